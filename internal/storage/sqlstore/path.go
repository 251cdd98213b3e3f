package sqlstore

// SQLiteFile returns the database file a DSN names, or false for a
// PostgreSQL (or invalid) DSN.
func SQLiteFile(dsn string) (string, bool) {
	d, path, err := parseDSN(dsn)
	if err != nil || d != dialectSQLite {
		return "", false
	}
	return path, true
}
