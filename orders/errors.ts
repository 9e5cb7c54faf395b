import { AppError } from '../lib/errors.ts';
import type { OrderStatus } from './lifecycle.ts';

/** The lifecycle table has no such move (for this actor): the problem names the moves there are. */
export class IllegalTransitionError extends AppError {
  readonly code = 'ILLEGAL_TRANSITION';
  readonly status = 409;
  readonly title = 'The order cannot move to that status';
  override readonly extensions: Record<string, unknown>;

  constructor(
    readonly from: OrderStatus | null,
    readonly to: OrderStatus,
    readonly allowed: OrderStatus[],
  ) {
    super(
      `An order in ${from ?? 'no status'} cannot move to ${to}` +
        (allowed.length ? `; it can move to ${allowed.join(', ')}` : '; it cannot change any more'),
    );
    this.extensions = { current_status: from, allowed_statuses: allowed };
  }
}

export class OrderNotCancellableError extends AppError {
  readonly code = 'ORDER_NOT_CANCELLABLE';
  readonly status = 409;
  readonly title = 'The order can no longer be cancelled';
  override readonly extensions: Record<string, unknown>;

  constructor(readonly current: OrderStatus) {
    super(`The order is ${current}; only orders not yet shipped can be cancelled`);
    this.extensions = { current_status: current };
  }
}

export class OrderNotAwaitingPaymentError extends AppError {
  readonly code = 'ORDER_NOT_AWAITING_PAYMENT';
  readonly status = 409;
  readonly title = 'The order is not waiting for a payment';
  override readonly extensions: Record<string, unknown>;

  constructor(readonly current: OrderStatus) {
    super(`The order is ${current}; a payment is taken only while it is AWAITING_PAYMENT`);
    this.extensions = { current_status: current };
  }
}

/** Another payment attempt of the order is being charged: this one waits (and is retried) until it is settled. */
export class PaymentInFlightError extends AppError {
  readonly code = 'PAYMENT_IN_FLIGHT';
  readonly status = 409;
  readonly title = 'Another payment of this order is being processed';
  override readonly recoverable = true;
}
