"""Numbers with their standard errors as text, for terminals and ``repr``."""
import math


def with_error(value, se):
    """'value ± se' with the se to two significant digits and the value to the same decimals;
    the value alone (6 significant digits) when the se is 0 or unknown; '' for a missing value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if not se > 0 or math.isnan(se):
        return f"{value:.6g}"
    decimals = max(0, 1 - math.floor(math.log10(se)))
    return f"{value:.{decimals}f} ± {se:.{decimals}f}"
