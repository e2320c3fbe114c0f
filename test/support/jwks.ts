/**
 * The accounts service's side of a SOTC, for tests: RSA signing keys, a JWKS document served over
 * HTTP on loopback (which can be taken down and brought back), and tokens signed, unsigned or
 * forged on demand.
 */
import { base64url, exportJWK, exportSPKI, generateKeyPair, type JWK, type JWTPayload, SignJWT } from "jose";
import { type Answer, WireServer } from "./http";

export const JWKS_PATH = "/.well-known/jwks.json";

type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>;

export interface SigningKey {
  readonly kid: string;
  readonly alg: "RS256";
  readonly privateKey: KeyPair["privateKey"];
  readonly publicKey: KeyPair["publicKey"];
  /** The public key as it appears in the JWKS (with `kid`, `alg` and `use`). */
  readonly publicJwk: JWK;
}

export async function createSigningKey(kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair("RS256");
  const publicJwk: JWK = { ...(await exportJWK(publicKey)), kid, alg: "RS256", use: "sig" };
  return { kid, alg: "RS256", privateKey, publicKey, publicJwk };
}

/**
 * How the JWKS endpoint behaves: `up` serves the document; `unavailable` answers 503; `hang`
 * holds the answer for `hangMs` (past any sensible client timeout); `garbage` answers 200 with
 * a body that is not JSON.
 */
export type JwksMode = "up" | "unavailable" | "hang" | "garbage";

export class JwksServer {
  mode: JwksMode = "up";
  /** The keys the document publishes; change it to rotate keys. */
  published: SigningKey[];

  private constructor(
    private readonly server: WireServer,
    published: SigningKey[],
  ) {
    this.published = published;
  }

  static async start(published: SigningKey[], options: { hangMs?: number } = {}): Promise<JwksServer> {
    const hangMs = options.hangMs ?? 1000;
    let instance: JwksServer | undefined;
    const server = await WireServer.start((request): Answer => {
      if (request.url !== JWKS_PATH) return { status: 404, body: { message: "not found" } };
      switch (instance?.mode) {
        case "unavailable":
          return { status: 503, body: { message: "service unavailable" } };
        case "garbage":
          return { status: 200, headers: { "content-type": "text/html" }, body: "<html>maintenance</html>" };
        case "hang":
          return { delayMs: hangMs, body: { keys: instance.published.map((key) => key.publicJwk) } };
        default:
          return { body: { keys: (instance?.published ?? []).map((key) => key.publicJwk) } };
      }
    });
    instance = new JwksServer(server, published);
    return instance;
  }

  /** Where the JWKS document is served. */
  get url(): string {
    return `${this.server.url}${JWKS_PATH}`;
  }

  /** How many times the JWKS document has been asked for (whatever the answer was). */
  get fetches(): number {
    return this.server.requests.filter((request) => request.url === JWKS_PATH).length;
  }

  close(): Promise<void> {
    return this.server.close();
  }
}

/** What a SOTC says about itself. Times are seconds since the epoch; `null` leaves the claim out. */
export interface SotcOptions {
  readonly issuer?: string;
  readonly audience?: string | string[];
  readonly subject?: string | null;
  readonly issuedAt?: number;
  readonly expiresAt?: number | null;
  readonly notBefore?: number;
  /** Defaults to the signing key's kid; `null` leaves the header parameter out. */
  readonly kid?: string | null;
}

/** Signs a SOTC with RS256 and the key given. */
export async function signSotc(key: SigningKey, claims: JWTPayload, options: SotcOptions): Promise<string> {
  const kid = options.kid === undefined ? key.kid : options.kid;
  const jwt = new SignJWT(claims).setProtectedHeader(kid === null ? { alg: key.alg } : { alg: key.alg, kid });
  if (options.issuer !== undefined) jwt.setIssuer(options.issuer);
  if (options.audience !== undefined) jwt.setAudience(options.audience);
  if (options.subject !== undefined && options.subject !== null) jwt.setSubject(options.subject);
  if (options.issuedAt !== undefined) jwt.setIssuedAt(options.issuedAt);
  if (options.expiresAt !== undefined && options.expiresAt !== null) jwt.setExpirationTime(options.expiresAt);
  if (options.notBefore !== undefined) jwt.setNotBefore(options.notBefore);
  return jwt.sign(key.privateKey);
}

const encodeJson = (value: unknown) => base64url.encode(JSON.stringify(value));

/** An unsecured JWT (`alg: none`): header and payload, and an empty signature. */
export function unsecuredToken(payload: JWTPayload, header: Record<string, unknown> = { alg: "none" }): string {
  return `${encodeJson(header)}.${encodeJson(payload)}.`;
}

/**
 * The key-confusion forgery: an HS256 token whose HMAC secret is the bytes of the victim's RSA
 * public key (its PEM), which a verifier that lets the token choose the algorithm would accept.
 */
export async function hmacWithPublicKey(key: SigningKey, payload: JWTPayload): Promise<string> {
  const pem = await exportSPKI(key.publicKey);
  return new SignJWT(payload).setProtectedHeader({ alg: "HS256", kid: key.kid }).sign(new TextEncoder().encode(pem));
}

/** The token with its payload replaced (claims changed after signing) and the signature kept. */
export function withPayload(token: string, payload: JWTPayload): string {
  const [header, , signature] = token.split(".");
  return `${header}.${encodeJson(payload)}.${signature}`;
}

/** The token with one bit of its signature flipped. */
export function withFlippedSignatureBit(token: string): string {
  const [header, payload, signature] = token.split(".");
  const bytes = base64url.decode(signature);
  bytes[bytes.length >> 1] ^= 0x01;
  return `${header}.${payload}.${base64url.encode(bytes)}`;
}

/** The claims of a token, read without verifying it. */
export function payloadOf(token: string): JWTPayload {
  return JSON.parse(new TextDecoder().decode(base64url.decode(token.split(".")[1]))) as JWTPayload;
}
