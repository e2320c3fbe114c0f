/**
 * The line a container (runtime.ts) writes on stdout and on stderr before each answer, with the
 * invocation's request id: read on both, every line the invocation wrote has been read (the
 * streams and the IPC channel reach the pool apart). Its own module: the runtime's runs a container.
 */
export const INVOCATION_END = "\u001elocal-invocation-end ";
