"""Fraud monitoring: the rules engine the authorization path calls (``fraud.engine``), the
post-answer scoring worker, alerts and cases, and the security team's console (API + web page)."""
