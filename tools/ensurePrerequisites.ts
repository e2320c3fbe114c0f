/**
 * node build/tools/ensurePrerequisites.js
 *
 * Installs what the tests and the local system need from the machine and npm does not bring:
 * Debian's redis-server (with apt-get, through sudo unless run as root). `npm test` runs it first.
 */
import { ensureRedisServer } from "./local/prerequisites";

ensureRedisServer({ log: (line) => console.error(line) }).then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : String(error));
    process.exit(1);
  },
);
