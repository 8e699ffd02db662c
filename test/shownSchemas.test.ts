/**
 * `schemaDifferences`: what a plan made on the inventory's schema would teach wrong for a prompt that shows
 * the tool otherwise (enrich's `<tools>` blocks).
 */
import { describe, expect, it } from "vitest"
import { schemaDifferences } from "../src/skyrl/shownSchemas.js"

const inventory = {
  type: "object",
  properties: {
    symbol: { type: "string", description: "Ticker" },
    period: { type: "string", enum: ["annual", "quarterly"], default: "annual" },
    limit: { type: "integer", default: 2 }
  },
  required: ["symbol"]
}
const shown = (edit: (s: any) => void) => {
  const s = structuredClone(inventory) as any
  edit(s)
  return s
}

describe("schemaDifferences", () => {
  it("none for the same schema, another description, Hermes' dict, or no enum or default shown", () => {
    expect(schemaDifferences(inventory, inventory)).toEqual([])
    expect(schemaDifferences(
      shown((s) => {
        s.type = "dict"
        s.properties.symbol.description = "Stock ticker symbol"
        delete s.properties.period.enum
        delete s.properties.limit.default
      }),
      inventory
    )).toEqual([])
    expect(schemaDifferences(shown((s) => (s.properties.period.enum = ["quarterly", "annual"])), inventory)).toEqual([])
  })

  it("names each difference a plan depends on", () => {
    expect(schemaDifferences(shown((s) => (s.properties.tickers = s.properties.symbol)), inventory)).toEqual([
      "params limit, period, symbol, tickers shown, limit, period, symbol in the inventory"
    ])
    expect(schemaDifferences(
      shown((s) => {
        s.required = []
        s.properties.symbol.type = "array"
        s.properties.limit.default = 4
        s.properties.period.enum = ["annual", "quarterly", "ttm"]
      }),
      inventory
    )).toEqual([
      "required none shown, symbol in the inventory",
      "limit default 4 shown, 2 in the inventory",
      "period allows [\"annual\",\"quarterly\",\"ttm\"] shown, [\"annual\",\"quarterly\"] in the inventory",
      "symbol is array shown, string in the inventory"
    ])
    expect(schemaDifferences(shown((s) => (s.properties.symbol.default = "AAPL")), inventory)).toEqual([
      "symbol default \"AAPL\" shown, none in the inventory"
    ])
  })
})
