/** A session's workspace files in this process: the files API's safe access (files/workspace-files.ts). */
import { workspaceView } from '@sluice/sandbox';
import { deletePath, listDir, openFile, writeFile, type WorkspaceRoot } from '../files/workspace-files.js';
import type { Session } from '../session/session.js';
import type { SessionFiles } from './backend.js';

/** The files of `session`; each operation is activity on it (touches it). */
export function localSessionFiles(session: Session): SessionFiles {
  return {
    list: async (dir) => listDir(await sessionRoot(session), dir),
    open: async (path) => openFile(await sessionRoot(session), path),
    write: async (path, data) => writeFile(await sessionRoot(session), path, data),
    remove: async (path) => deletePath(await sessionRoot(session), path),
  };
}

/** The session's workspace through its nosymfollow view, when there is one. */
async function sessionRoot(s: Session): Promise<WorkspaceRoot> {
  s.touch();
  const dir = await workspaceView(s.workspace);
  return { dir, symlinkSafe: dir !== s.workspace, uid: s.hostUID };
}
