/**
 * The policy pack run as the Pulumi CLI runs it: Node started in policy/, requiring the directory
 * (package.json `main`), serves the analyzer over gRPC and prints its port. Specs talk to it with
 * the analyzer client the Pulumi SDK ships, so the pack's loading and registration are checked
 * without the CLI.
 */
import * as grpc from "@grpc/grpc-js";
import { AnalyzerClient } from "@pulumi/pulumi/proto/analyzer_grpc_pb";
import * as analyzer from "@pulumi/pulumi/proto/analyzer_pb";
import { type ChildProcess, spawn } from "node:child_process";
import * as path from "node:path";
import { Empty } from "google-protobuf/google/protobuf/empty_pb";
import { Struct } from "google-protobuf/google/protobuf/struct_pb";
import { projectRoot } from "../../components/archive";

export interface Diagnostic {
  readonly policy: string;
  readonly message: string;
  readonly mandatory: boolean;
}

export interface PolicyServer {
  /** The pack's name and its policies' names and whether each is mandatory. */
  info(): Promise<{ name: string; policies: { name: string; mandatory: boolean }[] }>;
  /** What the pack reports on one resource with these inputs. */
  analyze(resource: { type: string; name: string; urn: string; props: Record<string, unknown> }): Promise<Diagnostic[]>;
  close(): void;
}

const unary = <T>(call: (callback: (error: grpc.ServiceError | null, value: T) => void) => void) =>
  new Promise<T>((resolve, reject) => call((error, value) => (error ? reject(error) : resolve(value))));

/** Starts the compiled pack (build/policy, so build first) and connects to it. */
export async function startPolicyServer(): Promise<PolicyServer> {
  const child: ChildProcess = spawn(process.execPath, ["-e", "require('.')"], {
    cwd: path.join(projectRoot(), "policy"),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (chunk) => (stderr += String(chunk)));
  const port = await new Promise<string>((resolve, reject) => {
    let stdout = "";
    child.stdout!.on("data", (chunk) => {
      stdout += String(chunk);
      if (stdout.includes("\n")) resolve(stdout.trim());
    });
    child.once("exit", (code) => reject(new Error(`the policy pack exited (${code}) before serving: ${stderr}`)));
  });
  const client = new AnalyzerClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const mandatory = (level: number) => level === analyzer.EnforcementLevel.MANDATORY;
  return {
    async info() {
      const info = await unary<analyzer.AnalyzerInfo>((callback) => client.getAnalyzerInfo(new Empty(), callback));
      return {
        name: info.getName(),
        policies: info
          .getPoliciesList()
          .map((policy) => ({ name: policy.getName(), mandatory: mandatory(policy.getEnforcementlevel()) })),
      };
    },
    async analyze(resource) {
      const request = new analyzer.AnalyzeRequest();
      request.setType(resource.type);
      request.setName(resource.name);
      request.setUrn(resource.urn);
      request.setOptions(new analyzer.AnalyzerResourceOptions());
      request.setProperties(Struct.fromJavaScript(resource.props as Parameters<typeof Struct.fromJavaScript>[0]));
      const response = await unary<analyzer.AnalyzeResponse>((callback) => client.analyze(request, callback));
      return response.getDiagnosticsList().map((diagnostic) => ({
        policy: diagnostic.getPolicyname(),
        message: diagnostic.getMessage(),
        mandatory: mandatory(diagnostic.getEnforcementlevel()),
      }));
    },
    close() {
      client.close();
      child.kill();
    },
  };
}
