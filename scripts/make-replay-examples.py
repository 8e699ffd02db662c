#!/usr/bin/env python3
"""Writes data/replay/: hand-written example answers in the Chat Completions shape, so that
`skyrl generate` runs offline (no key, no network) through the same decoding and validation as live
answers. They were written by the skyrl developers against data/inventory/finance-mcp.json, not by a
model; each file says so in its `model` field. Run again after editing TASKS.

A plan step is (server, tool, params) or (server, tool, params, depends_on, derived_params): the steps
(1-based) whose results it uses, and the params whose values come from those results (their values here are
illustrative). Every other param is literal: stated in the user prompt or fixed by the task."""
import json
import os

R = lambda name, crit: {"name": name, "criteria": [{"name": n, "description": d, "scoring": s} for n, d, s in crit]}
STD = [
    ("Grounding", "Every figure in the answer comes from a tool result of this run.", "0-2: 2 all grounded, 1 one unsupported figure, 0 more"),
    ("Completeness", "All parts the user asked for are present.", "0-2: 2 complete, 1 one part missing, 0 more missing"),
]

TASKS = [
    dict(task_id="nvda-quote-and-profile", domain="equity research", complexity="simple", max_turns=3,
         user_prompt="Give me NVIDIA's current share price and a two-sentence description of what the company does.",
         assumptions=["US market data is available for NVDA"],
         plan=[("fmp", "fmp_get_quote", {"symbol": "NVDA"}), ("fmp", "fmp_get_company_profile", {"symbol": "NVDA"})]),
    dict(task_id="msft-quarterly-revenue-trend", domain="equity research", complexity="moderate", max_turns=5,
         user_prompt="How has Microsoft's quarterly revenue moved over the last four quarters, and how did the stock trade from 2025-07-01 to 2025-09-30? Compute the quarter-over-quarter growth and the price return, and summarize both in a short paragraph.",
         assumptions=[],
         plan=[("fmp", "fmp_get_income_statement", {"symbol": "MSFT", "period": "quarterly", "limit": 4}),
               ("polygon", "polygon_get_aggs", {"ticker": "MSFT", "start_date": "2025-07-01", "end_date": "2025-09-30"}),
               ("python_execution", "execute_python", {"code": "revenue = [61.9, 64.7, 70.1, 76.4]\nclose = [498.8, 517.9]\ngrowth = [round(100 * (b / a - 1), 1) for a, b in zip(revenue, revenue[1:])]\nprint(growth, round(100 * (close[1] / close[0] - 1), 1))"},
                [1, 2], ["code"])]),
    dict(task_id="market-movers-slack-digest", domain="team reporting on slack", complexity="moderate", max_turns=5,
         user_prompt="Post today's top five gainers and top five losers to the #markets-daily Slack channel as a short digest.",
         assumptions=["the #markets-daily channel exists and the bot can post to it"],
         plan=[("fmp", "fmp_get_market_gainers", {"limit": 5}), ("fmp", "fmp_get_market_losers", {"limit": 5}),
               ("slack", "send_slack_message", {"channel": "markets-daily", "message": "Daily movers. Gainers: SMCI +12.4%, PLTR +8.1%, AMD +6.3%, TSLA +5.2%, UBER +4.8%. Losers: NKE -7.9%, PFE -5.5%, INTC -4.6%, BA -3.9%, DIS -3.1%."},
                [1, 2], ["message"])]),
    dict(task_id="market-open-check", domain="market monitoring", complexity="simple", max_turns=3,
         user_prompt="Is the US stock market open right now? If it is, tell me SPY's previous close.",
         assumptions=[],
         plan=[("polygon", "polygon_get_market_status", {}), ("polygon", "polygon_get_previous_close", {"ticker": "SPY"}, [1], [])]),
    dict(task_id="tsla-news-sentiment", domain="news and sentiment", complexity="moderate", max_turns=5,
         user_prompt="What has the news said about Tesla this week, and is the tone mostly positive or negative? Read the 10 latest Tesla headlines, search the web for \"Tesla stock news this week\", and include the stock's daily change.",
         assumptions=["news from the last seven days is enough"],
         plan=[("polygon", "polygon_get_news", {"ticker": "TSLA", "limit": 10}),
               ("fmp", "fmp_get_change_percent", {"symbol": "TSLA"}),
               ("tavily", "tavily_search", {"query": "Tesla stock news this week", "max_results": 5})]),
    dict(task_id="find-ticker-palantir", domain="equity research", complexity="simple", max_turns=3,
         user_prompt="I only know the company name Palantir. Find its ticker among the top 3 matches and tell me the latest quote.",
         assumptions=[],
         plan=[("fmp", "fmp_search_ticker", {"query": "Palantir", "limit": 3}), ("fmp", "fmp_get_quote", {"symbol": "PLTR"}, [1], ["symbol"])]),
    dict(task_id="jpm-hourly-volatility", domain="quantitative analysis with python", complexity="complex", max_turns=7,
         user_prompt="Measure JPMorgan's intraday volatility from 2025-09-02 to 2025-09-05 from hourly bars, compare it with the daily-bar volatility of the same days, store the result under the key jpm_vol_2025w36, and tell #quant-research where it is.",
         assumptions=["hourly bars are available for 2025-09-02 to 2025-09-05"],
         plan=[("polygon", "polygon_get_aggs", {"ticker": "JPM", "start_date": "2025-09-02", "end_date": "2025-09-05", "frequency": "hourly"}),
               ("polygon", "polygon_get_aggs", {"ticker": "JPM", "start_date": "2025-09-02", "end_date": "2025-09-05", "frequency": "daily"}),
               ("python_execution", "execute_python", {"code": "import math, statistics\nhourly = [301.2, 302.0, 300.8, 301.9, 303.1]\ndaily = [300.5, 302.4, 301.1, 303.0]\nvol = lambda p, k: statistics.stdev(math.log(b / a) for a, b in zip(p, p[1:])) * math.sqrt(k)\nprint(vol(hourly, 252 * 7), vol(daily, 252))"},
                [1, 2], ["code"]),
               ("python_execution", "store_execution_result", {"context_key": "jpm_vol_2025w36", "data": "{\"ticker\": \"JPM\", \"window\": \"2025-09-02/2025-09-05\", \"hourly_vol\": 0.187, \"daily_vol\": 0.162}"},
                [3], ["data"]),
               ("slack", "send_slack_message", {"channel": "quant-research", "message": "JPM volatility 2025-09-02..05: hourly 18.7% vs daily 16.2% annualized, stored under jpm_vol_2025w36."},
                [3, 4], ["message"])]),
    dict(task_id="amd-vs-intc-snapshot", domain="equity research", complexity="moderate", max_turns=6,
         user_prompt="Compare AMD and Intel today: price, daily percentage change, and the four latest headlines about the two.",
         assumptions=[],
         plan=[("fmp", "fmp_get_quote", {"symbol": "AMD"}), ("fmp", "fmp_get_quote", {"symbol": "INTC"}),
               ("fmp", "fmp_get_stock_news", {"tickers": "AMD,INTC", "limit": 4})]),
    dict(task_id="slack-channel-catchup", domain="team reporting on slack", complexity="simple", max_turns=4,
         user_prompt="Which Slack channels do we have, and what were the last 15 messages in channel C04TRADING?",
         assumptions=["channel C04TRADING exists"],
         plan=[("slack", "list_slack_channels", {}), ("slack", "get_slack_channel_history", {"channel_id": "C04TRADING", "limit": 15})]),
    dict(task_id="fed-decision-impact-qna", domain="web research on companies", complexity="moderate", max_turns=5,
         user_prompt="What did the Federal Reserve decide at its most recent FOMC meeting? And how did bank stocks such as Bank of America react the next day? Also run an advanced web search for \"Bank of America stock reaction Fed decision\".",
         assumptions=[],
         plan=[("tavily", "tavily_qna_search", {"query": "What did the Federal Reserve decide at its most recent FOMC meeting?"}),
               ("polygon", "polygon_get_previous_close", {"ticker": "BAC"}),
               ("tavily", "tavily_search", {"query": "Bank of America stock reaction Fed decision", "max_results": 5, "search_depth": "advanced"})]),
    dict(task_id="costco-fundamentals-brief", domain="equity research", complexity="complex", max_turns=7,
         user_prompt="Prepare a brief on Costco for the investment committee: business overview, annual revenue and net income for the last three years, the stock's move from 2025-01-02 to 2025-09-30, and two recent headlines. Post a one-line summary to #ic-prep.",
         assumptions=["#ic-prep exists"],
         plan=[("polygon", "polygon_get_ticker_details", {"ticker": "COST"}),
               ("fmp", "fmp_get_income_statement", {"symbol": "COST", "period": "annual", "limit": 3}),
               ("polygon", "polygon_get_aggs", {"ticker": "COST", "start_date": "2025-01-02", "end_date": "2025-09-30"}),
               ("polygon", "polygon_get_news", {"ticker": "COST", "limit": 2}),
               ("slack", "send_slack_message", {"channel": "ic-prep", "message": "Costco: revenue $254.5B (+5%), net income $7.4B; stock +4.1% from 2025-01-02 to 2025-09-30; news: membership fee hike, gold bar sales."},
                [1, 2, 3, 4], ["message"])]),
    dict(task_id="ko-previous-close-change", domain="market monitoring", complexity="simple", max_turns=3,
         user_prompt="What was Coca-Cola's previous close and how much has it moved today in percent?",
         assumptions=[],
         plan=[("fmp", "fmp_get_previous_close", {"symbol": "KO"}), ("fmp", "fmp_get_change_percent", {"symbol": "KO"})]),
]

def step(server, tool, params, depends_on=(), derived_params=()):
    return {"server": server, "tool": tool, "params": params,
            "depends_on": list(depends_on), "derived_params": list(derived_params)}


def main():
    out_dir = os.path.join(os.path.dirname(__file__), "..", "data", "replay")
    os.makedirs(out_dir, exist_ok=True)
    for i, t in enumerate(TASKS):
        answer = {
            "task_id": t["task_id"], "user_prompt": t["user_prompt"], "complexity": t["complexity"],
            "domain": t["domain"], "assumptions": t["assumptions"], "max_turns": t["max_turns"],
            "tool_sequence": [step(*s) for s in t["plan"]],
            "evaluation_rubric": R(f"{t['task_id']} rubric", STD),
        }
        body = {
            "id": f"example-{i + 1:04d}", "object": "chat.completion", "created": 0,
            "model": "skyrl-example (hand-written, not model output)",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": json.dumps(answer), "refusal": None}}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0,
                      "prompt_tokens_details": {"cached_tokens": 0},
                      "completion_tokens_details": {"reasoning_tokens": 0}},
        }
        with open(os.path.join(out_dir, f"example_{i + 1:04d}.json"), "w") as f:
            json.dump(body, f, indent=2)
            f.write("\n")

if __name__ == "__main__":
    main()
