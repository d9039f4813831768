/**
 * The files panel: the workspace's top level listed with sizes, upload (the file picker or a
 * drop on the panel), download (a blob URL on a temporary link) and delete, all through
 * `session.files` of the SDK.
 */
import type { FileEntry } from '@sluice/sdk';
import type { AppClient } from '../api/app-client.js';
import { byID } from '../dom/by-id.js';
import { el } from '../dom/el.js';
import { formatBytes } from '../dom/format.js';
import type { SessionState } from '../session/session-state.js';

export class FilesPanel {
  private readonly list = byID('file-list', HTMLUListElement);
  private readonly drop = byID('drop', HTMLDivElement);
  private readonly input = byID('upload', HTMLInputElement);

  constructor(
    private readonly client: AppClient,
    private readonly sessions: SessionState,
  ) {
    this.input.addEventListener('change', () => {
      const files = [...(this.input.files ?? [])];
      this.input.value = '';
      void this.upload(files);
    });
    byID('files-refresh', HTMLButtonElement).addEventListener('click', () => void this.refresh());
    // The whole panel takes drops; the dashed box shows where.
    const zone = byID('files', HTMLElement);
    zone.addEventListener('dragover', (ev) => {
      ev.preventDefault();
      if (ev.dataTransfer) ev.dataTransfer.dropEffect = 'copy';
      this.drop.dataset['over'] = 'true';
    });
    zone.addEventListener('dragleave', () => delete this.drop.dataset['over']);
    zone.addEventListener('drop', (ev) => {
      ev.preventDefault();
      delete this.drop.dataset['over'];
      void this.upload([...(ev.dataTransfer?.files ?? [])]);
    });
  }

  /** Lists the workspace again. */
  async refresh(): Promise<void> {
    try {
      const entries = await this.client.authorized(() => this.sessions.session.files.list());
      this.render(entries);
    } catch (err: unknown) {
      this.message(`Could not list the files: ${errorText(err)}`);
    }
  }

  private async upload(files: File[]): Promise<void> {
    for (const file of files) {
      try {
        await this.client.authorized(() => this.sessions.session.files.write(file.name, file));
      } catch (err: unknown) {
        this.message(`Could not upload ${file.name}: ${errorText(err)}`);
        return;
      }
    }
    await this.refresh();
  }

  private async download(entry: FileEntry): Promise<void> {
    try {
      const bytes = await this.client.authorized(() => this.sessions.session.files.read(entry.path));
      const url = URL.createObjectURL(new Blob([new Uint8Array(bytes)], { type: 'application/octet-stream' }));
      const a = el('a', { attrs: { href: url, download: entry.name } });
      document.body.append(a);
      a.click();
      a.remove();
      // The download has taken the blob once the click's navigation is handled.
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
    } catch (err: unknown) {
      this.message(`Could not download ${entry.name}: ${errorText(err)}`);
    }
  }

  private async remove(entry: FileEntry): Promise<void> {
    try {
      await this.client.authorized(() => this.sessions.session.files.delete(entry.path));
    } catch (err: unknown) {
      this.message(`Could not delete ${entry.name}: ${errorText(err)}`);
      return;
    }
    await this.refresh();
  }

  private render(entries: FileEntry[]): void {
    if (entries.length === 0) {
      this.message('No files yet.');
      return;
    }
    this.list.replaceChildren(
      ...entries.map((entry) => {
        const li = el('li', { attrs: { 'data-name': entry.name } });
        const isFile = entry.type === 'file';
        li.append(el('span', { className: 'name', text: entry.type === 'directory' ? `${entry.name}/` : entry.name }));
        if (isFile) li.append(el('span', { className: 'size', text: formatBytes(entry.size) }));
        if (isFile) {
          const get = el('button', { text: 'Download', attrs: { type: 'button', 'aria-label': `Download ${entry.name}` } });
          get.addEventListener('click', () => void this.download(entry));
          li.append(get);
        }
        const del = el('button', { text: 'Delete', attrs: { type: 'button', 'aria-label': `Delete ${entry.name}` } });
        del.addEventListener('click', () => void this.remove(entry));
        li.append(del);
        return li;
      }),
    );
  }

  private message(text: string): void {
    this.list.replaceChildren(el('li', { className: 'note', text }));
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
