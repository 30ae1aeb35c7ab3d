package policy

import "testing"

// TestSubjectMarkers: the urgent and callback markers of the configuration (R12, R13) match
// whole words of the subject in any case, ignoring hyphens on both sides; a marker of several
// words matches them in a row.
func TestSubjectMarkers(t *testing.T) {
	cases := []struct {
		subject string
		markers []string
		want    bool
	}{
		{"SPOED: kassa hangt", []string{"spoed"}, true},
		{"Kassa hangt (spoed!)", []string{"Spoed"}, true},
		{"Spoedcursus kassa", []string{"spoed"}, false}, // a word, not a prefix
		{"Bel-mij a.u.b.", []string{"bel-mij"}, true},
		{"Belmij graag", []string{"bel-mij"}, true},
		{"Bel mij graag terug", []string{"bel mij"}, true},
		{"Mij bel graag", []string{"bel mij"}, false}, // in a row
		{"Graag terugbellen", []string{"bel mij", "terugbellen"}, true},
		{"Pre-paid vraag", []string{"prepaid"}, true},
		{"Vraag over de kassa", []string{"spoed", "urgent"}, false},
		{"Urgent", []string{"", " ", "-"}, false}, // empty markers match nothing
		{"", []string{"spoed"}, false},
	}
	for _, tc := range cases {
		if got := hasWord(words(tc.subject), tc.markers); got != tc.want {
			t.Errorf("subject %q, markers %q: match = %v, want %v", tc.subject, tc.markers, got, tc.want)
		}
	}
}
