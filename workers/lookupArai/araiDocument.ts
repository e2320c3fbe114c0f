/**
 * The accounts service's ARAI answer, as it documents it (docs/rules.md#arai-response):
 * `{"data": UserAccountActivity, "meta": {"pageCount": n}}`. `data` is the fan's account
 * activity (identity, phone, counts, login history, linked accounts) and is what lookupArai
 * stores and the model reads; `meta` describes the answer and is not stored.
 *
 * Read tolerantly: the service adds fields over time and the snapshot keeps every field of
 * `data`, so only what this project relies on is checked: `data` itself, the fan it is about,
 * and the lists trimming cuts.
 */
import { z } from "../shared/zod";

/** The history lists of `data.history`, each trimmed to its most recent entries by `at`. */
export const HISTORY_LISTS = ["loginActivity", "failedLoginActivity"] as const;
export type HistoryList = (typeof HISTORY_LISTS)[number];

/**
 * One fan's account activity, the answer's `data`: identity (`globalUserId`, `firstName`,
 * `lastName`, `emailAddress`), phone (`phoneNumber`, `phoneNumberType`, `phoneNumberCountry`,
 * `sharedPhoneNumberCount`), `counts`, `history` and `linkedAccounts`, and whatever else the
 * service sends.
 */
export type UserAccountActivity = Record<string, unknown> & {
  readonly globalUserId: string;
  /** Totals over the fan's whole history: kept as sent, whatever trimming cuts from the lists. */
  readonly counts?: Record<string, unknown>;
  /** Entries `{result, at, os, browser, from, cip, device, lat, long}`. */
  readonly history?: Record<string, unknown> & { readonly [list in HistoryList]?: readonly unknown[] };
  /** Entries `{providerId, providerType, linkedAt}`. */
  readonly linkedAccounts?: readonly unknown[];
};

/** The schema of `data`: the fan's id required, the lists trimming cuts lists when present, the rest kept unchecked. */
export const userAccountActivitySchema = () =>
  z.looseObject({
    globalUserId: z.string().check(z.minLength(1)),
    history: z.optional(
      z.looseObject({ loginActivity: z.optional(z.array(z.unknown())), failedLoginActivity: z.optional(z.array(z.unknown())) }),
    ),
    linkedAccounts: z.optional(z.array(z.unknown())),
  });

/**
 * The schema of the whole answer: `data` required. `meta` (`pageCount`) describes the answer and
 * is neither used nor stored, so it is not checked: a change to it must not stop scoring.
 */
export const araiAnswerSchema = () => z.looseObject({ data: userAccountActivitySchema() });
