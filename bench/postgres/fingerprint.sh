# shellcheck shell=bash
# fingerprint URL (sourced; needs PSQL): what each result of the shop database
# (bench/postgres/generate.sql) is checked against — exact row count of every table in
# public, number of indexes, constraints (by type) and sequences' last values.
fingerprint() {
	$PSQL -At "$1" <<'SQL'
SELECT string_agg(format('%s=%s', t, n), ' ' ORDER BY t) FROM (
  SELECT 'country' t, count(*) n FROM public.country UNION ALL SELECT 'setting', count(*) FROM public.setting
  UNION ALL SELECT 'customer', count(*) FROM public.customer UNION ALL SELECT 'product', count(*) FROM public.product
  UNION ALL SELECT 'orders', count(*) FROM public.orders UNION ALL SELECT 'order_line', count(*) FROM public.order_line
  UNION ALL SELECT 'invoice_pdf', count(*) FROM public.invoice_pdf
  UNION ALL SELECT 'indexes', count(*) FROM pg_indexes WHERE schemaname = 'public'
  UNION ALL SELECT 'constraints_' || contype::text, count(*) FROM pg_constraint WHERE connamespace = 'public'::regnamespace GROUP BY contype::text
  UNION ALL SELECT 'seq_' || sequencename, last_value FROM pg_sequences WHERE schemaname = 'public'
) s;
SQL
}
