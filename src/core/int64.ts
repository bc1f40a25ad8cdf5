/**
 * Exact 64-bit integers as JavaScript carries them: a number while that is
 * exact (|x| < 2^53), a bigint beyond, which the JSON writer prints digit
 * for digit.
 */
const SAFE = BigInt(Number.MAX_SAFE_INTEGER);

export const exactInt = (x: bigint): number | bigint => (x >= -SAFE && x <= SAFE ? Number(x) : x);

/** A uint64 setting as a query that declares it 'int' shows it: QEMU's int64 view of the same bits. */
export const asInt64 = (x: number | bigint): number | bigint => exactInt(BigInt.asIntN(64, BigInt(x)));

/** An unsigned int (32-bit) parameter given a 64-bit value: C's truncating conversion. */
export const asUint32 = (x: number | bigint): number => Number(BigInt.asUintN(32, BigInt(x)));
