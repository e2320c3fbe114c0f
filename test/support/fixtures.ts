/**
 * The project's own fixtures (test/fixtures), read from the source tree.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { projectRoot } from "../../components/archive";

/** A JSON fixture under test/fixtures/events (or another folder of test/fixtures, given as `folder/name`). */
export function fixture<T = Record<string, unknown>>(name: string): T {
  const file = name.includes("/") ? name : path.join("events", name);
  return JSON.parse(fs.readFileSync(path.join(projectRoot(), "test", "fixtures", file), "utf8")) as T;
}
