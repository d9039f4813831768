/** A value tagged with explicit mime data by html(), markdown(), svg(), png() or jpeg(). */
export interface Rich {
  readonly kind: string;
}

/** mime type → data: strings (base64 for images) or, for application/json, the JSON value. */
export type MimeBundle = Record<string, unknown>;

/** Reports progress: progress(40), progress(40, 'Loading', data), progress('Loading') or progress({ percent, message, data }). */
export function progress(percent?: number | string | null, message?: string | null, data?: unknown): void;
export function progress(options: { percent?: number; message?: string; data?: unknown }): void;
/** Sends a value as a rich result; undefined sends nothing. */
export function result(value: unknown): void;
/** Same as result(). */
export function display(value: unknown): void;
/** The mime bundle result() would send, or null for undefined. */
export function mimeBundle(value: unknown): MimeBundle | null;
/** Marks a string as HTML for result(). */
export function html(text: string): Rich;
/** Marks a string as Markdown for result(). */
export function markdown(text: string): Rich;
/** Marks a string as an SVG image for result(). */
export function svg(text: string): Rich;
/** Marks a Buffer as a PNG image for result(). */
export function png(bytes: Uint8Array): Rich;
/** Marks a Buffer as a JPEG image for result(). */
export function jpeg(bytes: Uint8Array): Rich;

declare const sluice: {
  progress: typeof progress;
  result: typeof result;
  display: typeof display;
  mimeBundle: typeof mimeBundle;
  html: typeof html;
  markdown: typeof markdown;
  svg: typeof svg;
  png: typeof png;
  jpeg: typeof jpeg;
};
export default sluice;
