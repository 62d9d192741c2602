"""Verified savings (measurement and verification): baselines fitted before a measure's
installation, held to ASHRAE Guideline 14, and the energy, money and CO2 they show avoided.

Plain data in, dataclasses out; nothing here does I/O. docs/verification.md describes the
models, rules, gates and the uncertainty formula.
"""

from collector.verification.ashrae import FitQuality, fit_quality, savings_uncertainty_kwh
from collector.verification.baseline import (
    Attempt,
    Baseline,
    ModelChoice,
    ModelName,
    fit_baseline,
)
from collector.verification.daily import DailyModel
from collector.verification.hourly import HourlyModel
from collector.verification.inputs import DateRange, MeterData
from collector.verification.rules import DEFAULT_RULES, GATES, Gate, Rules
from collector.verification.savings import DailySavings, Savings, SavingsFigures, verify_savings
from collector.verification.sufficiency import Sufficiency
from collector.verification.tow import TimeOfWeekModel
from sparwatt.errors import VerificationError

__all__ = [
    "DEFAULT_RULES",
    "GATES",
    "Attempt",
    "Baseline",
    "DailyModel",
    "DailySavings",
    "DateRange",
    "FitQuality",
    "Gate",
    "HourlyModel",
    "MeterData",
    "ModelChoice",
    "ModelName",
    "Rules",
    "Savings",
    "SavingsFigures",
    "Sufficiency",
    "TimeOfWeekModel",
    "VerificationError",
    "fit_baseline",
    "fit_quality",
    "savings_uncertainty_kwh",
    "verify_savings",
]
