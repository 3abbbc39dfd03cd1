"""Adapters to other tools' plugin points. Each module imports its tool at the top, and nothing in mdsample imports
these modules: the tool loads them (e.g. lm_eval through its ``lm_eval.models`` entry point), so mdsample never
requires the tool."""
