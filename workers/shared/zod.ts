/**
 * The zod every module under workers/ builds its schemas with: `zod/mini`, answering in zod's
 * English messages. Import `z` from here, never from "zod" or "zod/mini" directly.
 *
 * Why mini: every worker's archive loads its schemas at cold start. Classic zod (`import { z }
 * from "zod"`) initialises the whole of its API when it loads, some 100 ms of CPU before the
 * handler runs; `zod/mini` (functions instead of methods: `z.optional(z.string())`,
 * `z.string().check(z.minLength(1))`) validates alike, and loads in a fraction of that when the
 * bundle keeps only the functions the code calls (components/archive.ts narrows it so).
 *
 * Why the locale: mini loads no locale, so its messages would read "Invalid input" alone, where
 * the workers' errors and logs say "Invalid input: expected string, received undefined". Its
 * own English locale (already loaded with mini, `z.locales.en`) restores classic's messages.
 * It is set on import, for the tests and tools that load this module; and `defineWorker` sets it
 * again as each worker's factory starts, because an archive is the factory serialized with what it
 * reaches, not the modules' top-level statements: a call made here on import never runs there.
 */
import * as z from "zod/mini";

/** Makes zod's messages English (idempotent; every schema built before or after answers in it). */
export function useEnglishMessages(): void {
  z.config(z.locales.en());
}

useEnglishMessages();

export { z };
