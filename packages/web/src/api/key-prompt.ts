/** The modal that asks for an API key when the server answers 401 (static/index.html `#key-dialog`). */
import { byID } from '../dom/by-id.js';

/** Shows the dialog with `reason` and resolves with the key typed in. */
export function promptForKey(reason: string): Promise<string> {
  const dialog = byID('key-dialog', HTMLDialogElement);
  const form = byID('key-form', HTMLFormElement);
  const input = byID('key-input', HTMLInputElement);
  byID('key-reason', HTMLParagraphElement).textContent = reason;
  input.value = '';
  return new Promise((resolve) => {
    const onSubmit = (ev: SubmitEvent): void => {
      ev.preventDefault();
      const key = input.value.trim();
      if (key === '') return;
      form.removeEventListener('submit', onSubmit);
      dialog.removeEventListener('cancel', onCancel);
      dialog.close();
      resolve(key);
    };
    // Without a key nothing works: Escape does not dismiss it.
    const onCancel = (ev: Event): void => ev.preventDefault();
    form.addEventListener('submit', onSubmit);
    dialog.addEventListener('cancel', onCancel);
    if (!dialog.open) dialog.showModal();
    input.focus();
  });
}
