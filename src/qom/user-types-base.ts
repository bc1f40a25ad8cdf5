/**
 * What every emulated user-creatable type shares: the object class with
 * the state the query commands read, the type interface object-add uses,
 * and how creation errors are told apart.
 */
import { genericError, type QmpError } from "../core/error.ts";
import { QomObject, type QomProperty } from "./object.ts";

/** An object created by object-add, with what the query commands read from it. */
export class UserObject extends QomObject {
  constructor(
    typename: string,
    props: QomProperty[],
    /** Live state for the query commands (query-iothreads, query-memdev). */
    readonly state: Record<string, unknown>,
    /** False for objects QEMU never lets object-del remove (the main loop). */
    private readonly removable = true,
  ) {
    super(typename, props);
  }

  /** Users holding the object (throttle nodes on a throttle-group): object-del refuses it meanwhile. */
  users = 0;

  get deletable(): boolean {
    return this.removable && this.users === 0;
  }
}

export interface UserType {
  readonly name: string;
  readonly parent: string;
  /**
   * Builds the object from object-add's arguments (already schema-checked);
   * `siblings` are the objects already under /objects.
   */
  create(args: Record<string, unknown>, id: string, siblings?: Iterable<QomObject>, env?: CreateEnv): UserObject;
}

/** What a type may need to know of the rest of the emulator while completing. */
export interface CreateEnv {
  /** A throttle group of this name exists outside /objects (a BlockBackend's own, block_set_io_throttle). */
  throttleGroupExists?(name: string): boolean;
}

const completionErrors = new WeakSet<object>();

/**
 * An error QEMU raises when completing the object (user_creatable_complete),
 * i.e. after it was added under /objects, rather than while setting properties.
 */
export function completeError(message: string): QmpError {
  const e = genericError(message);
  completionErrors.add(e);
  return e;
}

export function failedWhenCompleting(e: unknown): boolean {
  return typeof e === "object" && e !== null && completionErrors.has(e);
}

export { strerror } from "../core/errno.ts";

