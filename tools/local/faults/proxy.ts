/**
 * Faults at the wire: an HTTP proxy in front of each AWS service of the local system (installed
 * through the system's `wrapEndpoint`), passing every request through unless a rule set for that
 * service says otherwise. Drills set and clear rules while the system runs; the workers see what
 * they would see from AWS (an error answer, a slow answer, a partial batch answer).
 */
import type { WrapEndpoint } from "../types";

/** The services a proxy stands in front of, as `wrapEndpoint` names them. */
export type ProxiedService = Parameters<WrapEndpoint>[0];

/** A request as the proxy sees it. */
export interface ProxiedRequest {
  readonly service: ProxiedService;
  readonly method: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The AWS JSON protocol's operation (`X-Amz-Target`, e.g. `DynamoDB_20120810.BatchWriteItem`), when given. */
  readonly target?: string;
  readonly body: Buffer;
}

/** An answer, whole. */
export interface ProxiedResponse {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body: Buffer | string;
}

/** What the proxy does with one request. */
export type FaultAction =
  /** Forward it unchanged. */
  | { readonly kind: "pass" }
  /** Answer at once, without forwarding. */
  | ({ readonly kind: "respond" } & ProxiedResponse)
  /** Wait, then forward. */
  | { readonly kind: "delay"; readonly ms: number }
  /** Never answer (the socket stays open until the rule is cleared or the client gives up). */
  | { readonly kind: "hang" }
  /**
   * Forward a changed request and/or change the answer (an UnprocessedItems answer made by taking
   * items out of the request, say).
   */
  | {
      readonly kind: "rewrite";
      readonly request?: (body: Buffer) => Buffer;
      readonly response?: (answer: ProxiedResponse) => ProxiedResponse;
    };

/** Decides per request; undefined means pass. */
export type FaultRule = (request: ProxiedRequest) => FaultAction | undefined;

export interface FaultProxies {
  /** Give this to the local system (`RunOptions.wrapEndpoint`). */
  readonly wrapEndpoint: WrapEndpoint;
  /** Sets (or, with undefined, clears) the rule of a service. */
  set(service: ProxiedService, rule: FaultRule | undefined): void;
  /** Clears every rule; requests hanging are answered by forwarding them. */
  clear(): void;
  /** Requests a service's proxy has seen, and how many a rule changed. */
  counts(service: ProxiedService): { readonly seen: number; readonly faulted: number };
  close(): Promise<void>;
}
