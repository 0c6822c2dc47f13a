"""Rebates (返利): policies as versioned data, order previews and monthly settlements."""
