import { createHash } from 'node:crypto';

export interface ChargeRequest {
  /** The provider de-duplicates on this key: charging twice with one key charges once. */
  idempotencyKey: string;
  amount: number;
  currency: string;
  token: string | null;
}

export type ChargeResult =
  { status: 'captured'; providerRef: string } | { status: 'declined'; providerRef: string; reason: string };

export interface RefundRequest {
  /** The provider de-duplicates on this key: refunding twice with one key refunds once. */
  idempotencyKey: string;
  /** The charge to refund. */
  providerRef: string;
  amount: number;
  currency: string;
}

export interface RefundResult {
  status: 'refunded';
  refundRef: string;
}

/** A payment provider. Implementations throw a recoverable error when the provider cannot be reached. */
export interface PaymentGateway {
  charge(request: ChargeRequest): Promise<ChargeResult>;
  refund(request: RefundRequest): Promise<RefundResult>;
}

export interface SimulatedGatewayOptions {
  /** Amounts (minor units) above this are declined, as a card limit would. */
  declineAbove: number;
  /** Pretend network latency per charge. */
  latencyMs: number;
}

/** The token that the simulator always declines. */
export const DECLINED_TOKEN = 'tok_decline';

/**
 * The built-in payment simulator: deterministic per idempotency key, like a real provider's idempotent API.
 * Declines `tok_decline` and amounts above the configured limit; captures everything else.
 */
export class SimulatedPaymentGateway implements PaymentGateway {
  constructor(private readonly options: SimulatedGatewayOptions) {}

  async charge(request: ChargeRequest): Promise<ChargeResult> {
    if (this.options.latencyMs > 0) await new Promise((r) => setTimeout(r, this.options.latencyMs));
    const providerRef = `sim_${createHash('sha256').update(request.idempotencyKey).digest('hex').slice(0, 24)}`;
    if (request.token === DECLINED_TOKEN) return { status: 'declined', providerRef, reason: 'card_declined' };
    if (request.amount > this.options.declineAbove) {
      return { status: 'declined', providerRef, reason: 'amount_over_limit' };
    }
    return { status: 'captured', providerRef };
  }

  async refund(request: RefundRequest): Promise<RefundResult> {
    if (this.options.latencyMs > 0) await new Promise((r) => setTimeout(r, this.options.latencyMs));
    const refundRef = `sim_re_${createHash('sha256').update(request.idempotencyKey).digest('hex').slice(0, 21)}`;
    return { status: 'refunded', refundRef };
  }
}
