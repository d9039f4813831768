/** JSON shapes of languages in API answers (sessions' and executions' are the backend's: backend/local-views.ts). */
import type { Language, LanguageView } from '@sluice/protocol';
import { defaultModeFor, modesFor, type RuntimeInfo } from '@sluice/sandbox';

/** One runtime of `GET /api/languages`, installed or not. */
export function languageView(language: Language, info: RuntimeInfo): LanguageView {
  return {
    language,
    installed: info.installed,
    version: info.version,
    reason: info.reason,
    default_mode: defaultModeFor(language),
    modes: modesFor(language),
  };
}
