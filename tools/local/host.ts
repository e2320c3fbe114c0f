/**
 * `node host.js <service>`: runs one local AWS service in a process of its own, so that the
 * busiest of them (dynalite) does not share an event loop with the pollers and the generator.
 * It listens on a free loopback port, tells its parent the URL over IPC, and exits when its
 * parent goes. SQS gets FIFO deduplication's five-minute window (see sqsDeduplication).
 */
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { startSqsEmulator } from "./sqsDeduplication";

export type HostedService = "dynamodb" | "kinesis" | "sqs";

export type HostMessage = { readonly type: "ready"; readonly url: string } | { readonly type: "failed"; readonly error: string };

async function serve(service: HostedService): Promise<Server> {
  switch (service) {
    case "dynamodb": {
      const dynalite = require("dynalite") as (options: object) => Server;
      const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      return server;
    }
    case "kinesis": {
      const kinesalite = require("kinesalite") as (options: object) => Server;
      const server = kinesalite({ createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0, shardLimit: 1000 });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      return server;
    }
    case "sqs": {
      return startSqsEmulator();
    }
    default:
      throw new Error(`no such local service: ${String(service)}`);
  }
}

const send = (message: HostMessage) => process.send?.(message);

serve(process.argv[2] as HostedService).then(
  (server) => {
    send({ type: "ready", url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
    process.on("disconnect", () => process.exit(0));
  },
  (error: unknown) => {
    send({ type: "failed", error: error instanceof Error ? error.message : String(error) });
    process.exit(1);
  },
);
