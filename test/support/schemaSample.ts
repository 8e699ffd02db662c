/**
 * A fake model that obeys a (strict) JSON Schema: random instances of the schema, seeded. Supports
 * what strict schemas use: type (incl. arrays of types), properties/required, items, enum, const,
 * anyOf, $ref to root $defs, numeric bounds, minItems/maxItems.
 */
type Json = Record<string, unknown>
const isObject = (u: unknown): u is Json => typeof u === "object" && u !== null && !Array.isArray(u)

export { mulberry32 as seededRandom } from "../../src/skyrl/workPlan.js"

export const sampleSchema = (
  schema: unknown,
  random: () => number,
  root: Json = schema as Json,
  depth = 0
): unknown => {
  const pick = <A>(xs: ReadonlyArray<A>): A => xs[Math.floor(random() * xs.length)]!
  if (!isObject(schema)) throw new Error("not a schema")
  if (typeof schema.$ref === "string") {
    const name = schema.$ref.replace("#/$defs/", "")
    return sampleSchema((root.$defs as Json)[name], random, root, depth + 1)
  }
  if (Array.isArray(schema.anyOf)) return sampleSchema(pick(schema.anyOf), random, root, depth)
  if (schema.const !== undefined) return schema.const
  if (Array.isArray(schema.enum)) return pick(schema.enum)
  const type = Array.isArray(schema.type) ? pick(schema.type) : schema.type
  switch (type) {
    case "null":
      return null
    case "boolean":
      return random() < 0.5
    case "integer": {
      const min = typeof schema.minimum === "number" ? schema.minimum : -5
      const max = typeof schema.maximum === "number" ? schema.maximum : 100
      return Math.floor(min + random() * (max - min + 1))
    }
    case "number": {
      const min = typeof schema.minimum === "number" ? schema.minimum : -5
      const max = typeof schema.maximum === "number" ? schema.maximum : 100
      return min + random() * (max - min)
    }
    case "string":
      return schema.format === "date" ? "2025-01-31" : `s${Math.floor(random() * 1e6).toString(36)}`
    case "array": {
      const min = typeof schema.minItems === "number" ? schema.minItems : 0
      const max = typeof schema.maxItems === "number" ? schema.maxItems : min + 3
      const n = depth > 6 ? min : min + Math.floor(random() * (max - min + 1))
      return Array.from({ length: n }, () => sampleSchema(schema.items, random, root, depth + 1))
    }
    case "object": {
      const out: Json = {}
      const props = isObject(schema.properties) ? schema.properties : {}
      for (const key of Array.isArray(schema.required) ? schema.required : []) {
        out[String(key)] = sampleSchema(props[String(key)], random, root, depth + 1)
      }
      return out
    }
    default:
      throw new Error(`cannot sample type ${String(type)}`)
  }
}
