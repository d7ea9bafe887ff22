"""Off-policy evaluation: estimate how a candidate DecisionPolicy would have done on a runtime's exported decision log.

- `log`: read an export (JSON lines or Parquet) or the SQLite log into arrays (`DecisionLog`).
- `candidates`: a candidate's action distribution per logged context, from the runtime's own policy code.
- `estimators`: IPS, SNIPS, DM, DR, SNDR and Switch-DR with confidence intervals and effective sample sizes.
- `reward_model`: the cross-fitted scikit-learn reward model of DM and the doubly robust estimators.
- `evaluate`: the whole evaluation of one or more candidates, with its warnings.
- `supervised`: a supervised-to-bandit conversion (scikit-learn's digits) with a known true value, for verification.

Needs the `ope` extra (scikit-learn, pyarrow). See docs/ope.md.
"""
