/** Who may do what: `customer` its own orders, `admin` everything, `operations` read all orders and fulfil them. */
export const ROLES = ['customer', 'admin', 'operations'] as const;
export type Role = (typeof ROLES)[number];

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}
