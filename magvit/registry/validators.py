"""The config field validators (`magvit.core.validators`, where core configs use them too),
under the name plugins and the schema have always imported them by."""

from magvit.core.validators import at_least, finite, fraction, in_range, positive

__all__ = ["at_least", "finite", "fraction", "in_range", "positive"]
