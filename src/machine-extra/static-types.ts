/** Shapes of the recorded static answers (QAPI types of the same names). */
export interface CpuDefinitionInfo {
  name: string;
  "migration-safe"?: boolean;
  static: boolean;
  "unavailable-features"?: string[];
  typename: string;
  "alias-of"?: string;
  deprecated: boolean;
}

export interface MachineInfo {
  name: string;
  alias?: string;
  "is-default"?: boolean;
  "cpu-max": number;
  "hotpluggable-cpus": boolean;
  "numa-mem-supported": boolean;
  deprecated: boolean;
  "default-cpu-type"?: string;
  "default-ram-id"?: string;
}

export interface CommandLineParameterInfo {
  name: string;
  type: "string" | "boolean" | "number" | "size";
  help?: string;
  default?: string;
}

export interface CommandLineOptionInfo {
  option: string;
  parameters: CommandLineParameterInfo[];
}

export interface QomTypeInfo {
  name: string;
  abstract?: boolean;
  parent?: string;
}

export interface ObjectPropertyInfo {
  name: string;
  type: string;
  description?: string;
  "default-value"?: unknown;
}

export interface CpuModelInfo {
  name: string;
  props?: Record<string, unknown>;
}
