/**
 * Endpoints that fail the way a broken network does, for the specs that check every client is
 * bounded in time: a TCP server that accepts connections and never answers, and an address where
 * nothing listens, so connections are refused.
 */
import * as net from "node:net";

/** A TCP server that accepts every connection, reads what it is sent, and never answers. */
export interface SilentServer {
  readonly url: string;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Connections that sent something (a request) so far. */
  readonly requests: number;
  /** Connections still open. */
  readonly open: number;
  /** Connections the client has closed (an attempt that gave up). */
  readonly closed: number;
  close(): Promise<void>;
}

/** Starts a silent server on a free loopback port. */
export async function startSilentServer(): Promise<SilentServer> {
  const sockets = new Set<net.Socket>();
  let connections = 0;
  let requests = 0;
  let closed = 0;
  const server = net.createServer((socket) => {
    connections += 1;
    sockets.add(socket);
    socket.once("data", () => (requests += 1));
    socket.on("data", () => undefined);
    socket.on("error", () => undefined);
    socket.on("close", () => {
      sockets.delete(socket);
      closed += 1;
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    get connections() {
      return connections;
    },
    get requests() {
      return requests;
    },
    get open() {
      return sockets.size;
    },
    get closed() {
      return closed;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A loopback URL on a port nothing listens on (it was free a moment ago): connections to it are refused. */
export async function refusingUrl(): Promise<string> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}
