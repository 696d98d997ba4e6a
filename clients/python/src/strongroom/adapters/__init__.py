"""Drop-in replacements for the token stores apps already have: change one import and one
constructor line, keep the rest of the app."""
