"""Issue 41's case, shared by the core and framework tests: a question, five passages on other topics, and one that
answers it."""

from __future__ import annotations

QUESTION = "What is the boiling point of water at sea level?"
IRRELEVANT = [
    "The football match ended in a draw after extra time and a penalty shoot-out.",
    "Risotto is a northern Italian rice dish cooked with broth until it reaches a creamy consistency.",
    "Capital gains tax is levied on the profit from the sale of property or an investment.",
    "A player is in an offside position if any part of the head, body or feet is in the opponents' half.",
    "Sourdough bread is made by the fermentation of dough using naturally occurring lactobacilli and yeast.",
]
RELEVANT = "At sea level, pure water boils at 100 degrees Celsius (212 degrees Fahrenheit)."
WITH_RELEVANT = [*IRRELEVANT[:2], RELEVANT, *IRRELEVANT[2:]]
"""The relevant passage third of six, as a retriever might place it."""
