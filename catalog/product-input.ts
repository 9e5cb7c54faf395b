import { z } from 'zod';

const CURRENCIES: ReadonlySet<string> = new Set(Intl.supportedValuesOf('currency'));

/** The fields of a product as clients and CSV files give them; the same rules for the API and the import. */
export const productFields = {
  sku: z
    .string({ message: 'must be a text' })
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'letters, digits, dot, dash or underscore, at most 64'),
  name: z
    .string({ message: 'must be a text' })
    .trim()
    .min(1, 'must not be empty')
    .max(200, 'at most 200 characters'),
  price: z
    .number({ message: 'must be a whole number of minor units (cents)' })
    .int('must be a whole number of minor units (cents)')
    .min(1, 'must be at least 1')
    .max(100_000_000_00, 'at most 10000000000'),
  currency: z
    .string({ message: 'must be an ISO 4217 code' })
    .refine((c) => CURRENCIES.has(c), 'must be an ISO 4217 currency code such as EUR'),
  stock: z
    .number({ message: 'must be a whole number' })
    .int('must be a whole number')
    .min(0, 'must not be negative')
    .max(1_000_000_000, 'at most 1000000000'),
  low_stock_threshold: z
    .number({ message: 'must be a whole number' })
    .int('must be a whole number')
    .min(0, 'must not be negative')
    .max(1_000_000_000, 'at most 1000000000'),
};

export const newProductSchema = z.strictObject({
  sku: productFields.sku,
  name: productFields.name,
  price: productFields.price,
  currency: productFields.currency,
  stock: productFields.stock,
  low_stock_threshold: productFields.low_stock_threshold.optional(),
});
export type NewProductInput = z.infer<typeof newProductSchema>;

export const productPatchSchema = z
  .strictObject({
    name: productFields.name.optional(),
    price: productFields.price.optional(),
    low_stock_threshold: productFields.low_stock_threshold.optional(),
    active: z.boolean({ message: 'must be true or false' }).optional(),
  })
  .refine((p) => Object.keys(p).length > 0, {
    message: 'change at least one of name, price, low_stock_threshold, active',
  });
export type ProductPatch = z.infer<typeof productPatchSchema>;

export const stockAdjustmentSchema = z.strictObject({
  delta: z
    .number({ message: 'must be a whole number' })
    .int('must be a whole number')
    .min(-1_000_000_000)
    .max(1_000_000_000)
    .refine((d) => d !== 0, 'must not be zero'),
  reason: z.enum(['restock', 'adjustment'], { message: 'must be "restock" or "adjustment"' }),
  note: z.string().max(500, 'at most 500 characters').optional(),
});

const line = z
  .strictObject({
    product_id: z.uuid({ message: 'must be a product id (uuid)' }).optional(),
    sku: z.string().min(1).max(64).optional(),
    quantity: z
      .number({ message: 'must be a whole number' })
      .int({ message: 'must be a whole number' })
      .min(1, { message: 'must be at least 1' })
      .max(1_000_000, { message: 'must be at most 1000000' }),
  })
  .refine((l) => (l.product_id === undefined) !== (l.sku === undefined), {
    message: 'give either product_id or sku',
  });

export const availabilitySchema = z.strictObject({
  items: z
    .array(line, { message: 'must be a list of lines' })
    .min(1, { message: 'ask for at least one item' })
    .max(100, { message: 'at most 100 lines' }),
});
