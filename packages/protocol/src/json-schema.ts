/**
 * The part of JSON Schema (2020-12, as OpenAPI 3.1 uses it) that the request schemas need.
 * Request schemas stand beside their validators in requests.ts; `GET /openapi.json` serves them.
 */
/** The JSON types a schema names. */
export type JSONType = 'object' | 'string' | 'number' | 'integer' | 'boolean' | 'array' | 'null';

export interface JSONSchema {
  type?: JSONType | readonly JSONType[];
  description?: string;
  properties?: Record<string, JSONSchema>;
  required?: readonly string[];
  additionalProperties?: boolean | JSONSchema;
  propertyNames?: JSONSchema;
  maxProperties?: number;
  items?: JSONSchema;
  uniqueItems?: boolean;
  enum?: readonly (string | number | boolean | null)[];
  const?: string | number | boolean | null;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  anyOf?: readonly JSONSchema[];
  oneOf?: readonly JSONSchema[];
  $ref?: string;
  examples?: readonly unknown[];
}

/** An object schema whose `properties` are known at compile time (their names are the validator's field list). */
export interface ObjectSchema<K extends string = string> extends JSONSchema {
  type: 'object';
  properties: Record<K, JSONSchema>;
  additionalProperties: false;
}
