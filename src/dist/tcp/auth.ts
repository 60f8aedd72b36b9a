// Challenge-response with a shared secret: each side proves it knows the secret by returning an
// HMAC of a fresh random nonce chosen by the other side, so the secret never crosses the wire
// and a recorded exchange cannot be replayed.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export function newNonce(): string {
  return randomBytes(16).toString('hex');
}

export function proof(secret: string, ...parts: (string | number)[]): string {
  return createHmac('sha256', secret).update(parts.join('|')).digest('hex');
}

export function proofMatches(secret: string, claimed: unknown, ...parts: (string | number)[]): boolean {
  if (typeof claimed !== 'string') return false;
  const expected = Buffer.from(proof(secret, ...parts), 'hex');
  const got = Buffer.from(claimed, 'hex');
  return got.length === expected.length && timingSafeEqual(got, expected);
}
