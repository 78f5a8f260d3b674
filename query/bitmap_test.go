package query

import (
	"reflect"
	"strings"
	"testing"
)

func TestExpandBitmap(t *testing.T) {
	s := mustSchema(t, accountSchemaID, readTestdata(t, "AccountChangeEvent.avsc"))
	// A schema whose compound fields sit in [string,R] and direct R positions.
	other := mustSchema(t, "other", `{"type":"record","name":"X","fields":[
		{"name":"ChangeEventHeader","type":"string"},
		{"name":"Mixed","type":["string",{"type":"record","name":"R","fields":[{"name":"A","type":"string"},{"name":"B","type":"string"}]}]},
		{"name":"Direct","type":"R"},
		{"name":"Plain","type":["null","long"]}]}`)
	allAddress := []string{"BillingAddress.Street", "BillingAddress.City", "BillingAddress.State", "BillingAddress.PostalCode",
		"BillingAddress.Country", "BillingAddress.StateCode", "BillingAddress.CountryCode", "BillingAddress.Latitude",
		"BillingAddress.Longitude", "BillingAddress.Xyz", "BillingAddress.GeocodeAccuracy"}
	cases := []struct {
		name     string
		schema   *Schema
		in       []string
		soql     bool
		want     []string
		problems []string // substrings, one per expected problem
	}{
		{name: "empty", schema: s, in: nil, want: nil},
		{name: "worked example street", schema: s, in: []string{"0x400000", "4-0x01"}, want: []string{"LastModifiedDate", "BillingAddress.Street"}},
		{name: "worked example city state (case 10)", schema: s, in: []string{"0x400000", "4-0x06"},
			want: []string{"LastModifiedDate", "BillingAddress.City", "BillingAddress.State"}},
		{name: "nested alone", schema: s, in: []string{"4-0x01"}, want: []string{"BillingAddress.Street"}},
		{name: "two nested alone", schema: s, in: []string{"4-0x02", "5-0x01"}, want: []string{"BillingAddress.City", "ShippingAddress.Street"}},
		{name: "lower case hex", schema: s, in: []string{"0x4000e0"}, want: []string{"ShippingAddress", "Phone", "Fax", "LastModifiedDate"}},
		{name: "upper case X", schema: s, in: []string{"0X400000"}, want: []string{"LastModifiedDate"}},
		{name: "odd digit count", schema: s, in: []string{"0x2"}, want: []string{"Name"}},
		{name: "odd digits big", schema: s, in: []string{"0x40000E"}, want: []string{"Name", "Type", "ParentId", "LastModifiedDate"}},
		{name: "leading zeros", schema: s, in: []string{"0x0000000000400000"}, want: []string{"LastModifiedDate"}},
		{name: "docs example bits", schema: s, in: []string{"0x650004E0"},
			want: []string{"ShippingAddress", "Phone", "Fax", "Sic", "Jigsaw", "CleanStatus", "Tradestyle", "NaicsCode"}},
		{name: "all subfields listed (not collapsed)", schema: s, in: []string{"4-0x7FF"}, want: allAddress},
		{name: "soql names", schema: s, in: []string{"0x400000", "4-0x06", "5-0x01", "1-0x02"}, soql: true,
			want: []string{"LastModifiedDate", "BillingCity", "BillingState", "ShippingStreet", "FirstName"}},
		{name: "union [null,string,R]", schema: s, in: []string{"1-0x06"}, want: []string{"Name.FirstName", "Name.LastName"}},
		{name: "union [string,R]", schema: other, in: []string{"1-0x3"}, want: []string{"Mixed.A", "Mixed.B"}},
		{name: "direct record", schema: other, in: []string{"2-0x2"}, want: []string{"Direct.B"}},
		{name: "bit beyond top-level fields", schema: other, in: []string{"0x12"}, want: []string{"Mixed"},
			problems: []string{`"0x12": bit 4 is beyond the 4 top-level fields`}},
		{name: "many bits beyond", schema: s, in: []string{"0xFFFFFFFFFFFFFFFFFFFF"}, want: s.topNames,
			problems: []string{"34 bits from bit 46 are beyond"}},
		{name: "nested bit beyond", schema: s, in: []string{"4-0x801"}, want: []string{"BillingAddress.Street"},
			problems: []string{"bit 11 is beyond the 11 subfields of BillingAddress"}},
		{name: "parent not compound", schema: other, in: []string{"3-0x1"}, problems: []string{"Plain is not a compound record"}},
		{name: "parent beyond fields", schema: s, in: []string{"99-0x1"}, problems: []string{"parent index 99 beyond"}},
		{name: "garbage entries", schema: s, in: []string{"0x", "0xZZ", "x-0x1", "-0x1", "4-", "4-0x", "4-1", "Name", "", "4-0xG1"},
			problems: []string{"not a bitmap element", "not a bitmap element", "not a bitmap element", "not a bitmap element",
				"not a bitmap element", "not a bitmap element", "not a bitmap element", "not a bitmap element",
				"not a bitmap element", "not a bitmap element"}},
		{name: "good entries still expand around bad ones", schema: s, in: []string{"0x400000", "nope", "4-0x01"},
			want: []string{"LastModifiedDate", "BillingAddress.Street"}, problems: []string{`"nope"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, problems := tc.schema.ExpandBitmap("changedFields", tc.in, tc.soql)
			if !reflect.DeepEqual(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
				t.Errorf("names = %q\nwant    %q", got, tc.want)
			}
			if len(problems) != len(tc.problems) {
				t.Fatalf("problems = %q, want %d like %q", problems, len(tc.problems), tc.problems)
			}
			for i, p := range tc.problems {
				if !strings.Contains(problems[i], p) || !strings.HasPrefix(problems[i], "changedFields: ") {
					t.Errorf("problem %d = %q, want it to contain %q", i, problems[i], p)
				}
			}
		})
	}
}

func TestExpandBitmapsAllThreeFields(t *testing.T) {
	s := mustSchema(t, accountSchemaID, readTestdata(t, "AccountChangeEvent.avsc"))
	r := s.ExpandBitmaps([]string{"0x400000"}, []string{"0x8000", "4-0x2"}, []string{"0x10000", "0x1000000000000000"}, false)
	if !reflect.DeepEqual(r.Changed, []string{"LastModifiedDate"}) ||
		!reflect.DeepEqual(r.Nulled, []string{"TickerSymbol", "BillingAddress.City"}) ||
		!reflect.DeepEqual(r.Diff, []string{"Description"}) {
		t.Errorf("got %+v", r)
	}
	if len(r.Problems) != 1 || !strings.HasPrefix(r.Problems[0], "diffFields: ") {
		t.Errorf("problems = %q", r.Problems)
	}
}

func TestSOQLName(t *testing.T) {
	cases := map[[2]string]string{
		{"BillingAddress", "City"}:    "BillingCity",
		{"ShippingAddress", "Street"}: "ShippingStreet",
		{"MailingAddress", "Country"}: "MailingCountry",
		{"Address", "PostalCode"}:     "PostalCode",
		{"Name", "FirstName"}:         "FirstName",
		{"Loc__c", "Latitude__s"}:     "Loc__Latitude__s",
		{"Other", "Thing"}:            "Other.Thing",
	}
	for in, want := range cases {
		if got := SOQLName(in[0], in[1]); got != want {
			t.Errorf("SOQLName(%q, %q) = %q, want %q", in[0], in[1], got, want)
		}
	}
}

// FuzzExpandBitmap: arbitrary elements never panic, and every name produced is a field of the schema.
func FuzzExpandBitmap(f *testing.F) {
	s := mustSchema(f, accountSchemaID, readTestdata(f, "AccountChangeEvent.avsc"))
	valid := map[string]bool{}
	for i, n := range s.topNames {
		valid[n] = true
		for _, sub := range s.subNames[i] {
			valid[sub] = true
		}
		for _, sub := range s.soqlSub[i] {
			valid[sub] = true
		}
	}
	for _, seed := range [][2]string{{"0x400000", "4-0x01"}, {"0x650004E0", "7-0x06"}, {"0X", "-"}, {"99999999-0xF", "1-0xfffffff"}} {
		f.Add(seed[0], seed[1], false)
	}
	f.Fuzz(func(t *testing.T, a, b string, soql bool) {
		names, _ := s.ExpandBitmap("changedFields", []string{a, b}, soql)
		for _, n := range names {
			if !valid[n] {
				t.Fatalf("invented name %q from %q %q", n, a, b)
			}
		}
	})
}
