/**
 * Captures the JSON log lines a worker writes (Powertools writes to process.stdout).
 */
export interface LogLine {
  level: string;
  message: string;
  [key: string]: unknown;
}

export async function captureLogs<T>(action: () => Promise<T>): Promise<{ result: T; logs: LogLine[] }> {
  const lines: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    const text = typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8");
    if (text.trimStart().startsWith("{")) {
      lines.push(...text.split("\n").filter((line) => line.trim().length > 0));
      return true;
    }
    return write(chunk, ...(rest as []));
  }) as typeof process.stdout.write;
  try {
    const result = await action();
    return { result, logs: lines.map((line) => JSON.parse(line) as LogLine) };
  } finally {
    process.stdout.write = write;
  }
}
