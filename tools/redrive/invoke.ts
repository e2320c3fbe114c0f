/**
 * Invoking a function synchronously with a redriven event, as the redrive paths that re-deliver
 * records do: the function's answer parsed, or why the function failed.
 */
import { InvokeCommand, type LambdaClient } from "@aws-sdk/client-lambda";

export type InvokeAnswer = { readonly ok: true; readonly result: unknown } | { readonly ok: false; readonly reason: string };

/** Runs `functionName` with `event` (RequestResponse); its JSON result, or the error it reported. */
export async function invokeForAnswer(lambda: LambdaClient, functionName: string, event: unknown): Promise<InvokeAnswer> {
  const answer = await lambda.send(
    new InvokeCommand({
      FunctionName: functionName,
      InvocationType: "RequestResponse",
      Payload: Buffer.from(JSON.stringify(event)),
    }),
  );
  const text = answer.Payload ? Buffer.from(answer.Payload).toString("utf8") : "";
  let result: unknown;
  try {
    result = text === "" ? null : JSON.parse(text);
  } catch {
    result = text;
  }
  if (!answer.FunctionError) return { ok: true, result };
  const error = result as { errorType?: string; errorMessage?: string } | null;
  return {
    ok: false,
    reason: `the function failed (${answer.FunctionError}): ${error?.errorType ?? "Error"}: ${error?.errorMessage ?? text}`,
  };
}
