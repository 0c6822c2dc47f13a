"""WHAT PEOPLE READ: PDFs, sheets, fonts."""
