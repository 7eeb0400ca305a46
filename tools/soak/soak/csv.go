package soak

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
)

// CSVHeader names the columns WriteCSV writes. An unmeasured value is an
// empty cell.
var CSVHeader = []string{"elapsed_seconds", "requests", "phase", "goroutines", "heap_inuse_mib", "rss_mib"}

// WriteCSV writes one row per sample.
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	for _, s := range r.Samples {
		row := []string{
			strconv.FormatFloat(s.Elapsed.Seconds(), 'f', 3, 64),
			strconv.FormatInt(s.Requests, 10),
			string(s.Phase),
			"", "", "",
		}
		if v, ok := s.Value(Goroutines); ok {
			row[3] = strconv.FormatInt(v, 10)
		}
		if v, ok := s.Value(Heap); ok {
			row[4] = fmt.Sprintf("%.3f", float64(v)/mib)
		}
		if v, ok := s.Value(RSS); ok {
			row[5] = fmt.Sprintf("%.3f", float64(v)/mib)
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
