/**
 * Captures the JSON log lines a worker writes. Powertools writes DEBUG and INFO lines to
 * stdout and WARN and ERROR lines to stderr; both are collected, in order.
 */
export interface LogLine {
  level: string;
  message: string;
  [key: string]: unknown;
}

export async function captureLogs<T>(action: () => Promise<T>): Promise<{ result: T; logs: LogLine[] }> {
  const lines: string[] = [];
  const streams = [process.stdout, process.stderr];
  const writes = streams.map((stream) => stream.write.bind(stream));
  streams.forEach((stream, index) => {
    stream.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      const text = typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8");
      if (text.trimStart().startsWith("{")) {
        lines.push(...text.split("\n").filter((line) => line.trim().length > 0));
        return true;
      }
      return writes[index]!(chunk, ...(rest as []));
    }) as typeof stream.write;
  });
  try {
    const result = await action();
    return { result, logs: lines.map((line) => JSON.parse(line) as LogLine) };
  } finally {
    streams.forEach((stream, index) => (stream.write = writes[index]!));
  }
}

/** The lines logged at `level`, in order. */
export function linesAt(logs: readonly LogLine[], level: "DEBUG" | "INFO" | "WARN" | "ERROR"): LogLine[] {
  return logs.filter((line) => line.level === level);
}

/** The WARN lines, in order: a batch worker writes one for each record it fails. */
export const warnings = (logs: readonly LogLine[]): LogLine[] => linesAt(logs, "WARN");
