/**
 * The wire-level HTTP pieces the tests mock services with. They live with the local system,
 * whose stand-ins serve with them too; tests import them from here.
 */
export * from "../../tools/local/wire";
