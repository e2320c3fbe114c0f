/**
 * Faults at the wire that pass everything through: the `FaultProxies` of the drill runner until
 * the proxies of tools/local/faults/proxy.ts (`createFaultProxies`) take their place. It puts
 * nothing in front of the services and changes no request; a rule set on it is kept but never
 * applied, and its counts stay at zero, so a drill that relies on one finds its fault not hit.
 */
import type { FaultProxies, FaultRule, ProxiedService } from "../faults/proxy";

export function passThroughFaults(): FaultProxies {
  const rules = new Map<ProxiedService, FaultRule>();
  return {
    wrapEndpoint: async (_name, url) => url,
    set(service, rule) {
      if (rule) rules.set(service, rule);
      else rules.delete(service);
    },
    clear: () => rules.clear(),
    counts: () => ({ seen: 0, faulted: 0 }),
    close: async () => rules.clear(),
  };
}
