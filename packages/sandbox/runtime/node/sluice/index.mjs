// ESM entry: the same functions as index.js (one implementation, one fd probe).
import sluice from './index.js';

export const { progress, result, display, mimeBundle, html, markdown, svg, png, jpeg } = sluice;
export default sluice;
