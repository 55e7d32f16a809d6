"""Reading tables, task and schema inference, per-fold preprocessing, new-row coercion."""
