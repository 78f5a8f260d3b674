package emulator

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/hamba/avro/v2"
)

// changeTypes are the ChangeType enum symbols of the bundled schemas, in order.
var changeTypes = []string{"CREATE", "UPDATE", "DELETE", "UNDELETE", "GAP_CREATE", "GAP_UPDATE", "GAP_DELETE", "GAP_UNDELETE", "GAP_OVERFLOW", "SNAPSHOT"}

// channelEntities are the entity topics /data/ChangeEvents carries.
var channelEntities = []string{"/data/AccountChangeEvent", "/data/ContactChangeEvent", "/data/OpportunityChangeEvent"}

// systemFields are never picked as the "user" part of an update.
var systemFields = []string{"ChangeEventHeader", "CreatedDate", "CreatedById", "LastModifiedDate", "LastModifiedById",
	"LastCURequestDate", "LastCUUpdateDate", "LastStageChangeDate", "Jigsaw", "JigsawCompanyId", "JigsawContactId", "CleanStatus"}

func (g *Generator) pickChangeType() string {
	total := 0
	for _, ct := range changeTypes {
		total += g.mix[ct]
	}
	if total <= 0 {
		return "CREATE"
	}
	k := g.r.IntN(total)
	for _, ct := range changeTypes {
		if k < g.mix[ct] {
			return ct
		}
		k -= g.mix[ct]
	}
	return "CREATE"
}

// entityOf maps a change event record name to its entity: AccountChangeEvent → Account, Foo__ChangeEvent → Foo__c.
func entityOf(rec *avro.RecordSchema) string {
	n := rec.Name()
	if strings.HasSuffix(n, "__ChangeEvent") {
		return strings.TrimSuffix(n, "__ChangeEvent") + "__c"
	}
	return strings.TrimSuffix(n, "ChangeEvent")
}

var idPrefixes = map[string]string{"Account": "001", "Contact": "003", "Opportunity": "006", "Lead": "00Q", "Case": "500"}

// sfID returns an 18-character Salesforce-style ID with a correct case-safe suffix.
func (g *Generator) sfID(prefix string) string {
	const alnum = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	b := []byte(prefix + "5g00000")
	for len(b) < 15 {
		b = append(b, alnum[g.r.IntN(len(alnum))])
	}
	const suffix = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
	for chunk := 0; chunk < 3; chunk++ {
		bits := 0
		for i := 0; i < 5; i++ {
			if c := b[chunk*5+i]; c >= 'A' && c <= 'Z' {
				bits |= 1 << i
			}
		}
		b = append(b, suffix[bits])
	}
	return string(b)
}

func (g *Generator) userID() string {
	users := []string{"0055g00000AbCdEAAV", "0055g00000FgHiJAAV", "0055g00000KlMnOAAV", "00558000000yFyDAAU"}
	return users[g.r.IntN(len(users))]
}

func (g *Generator) pick(list ...string) string { return list[g.r.IntN(len(list))] }

// nextChangeLocked builds one change event.
func (g *Generator) nextChangeLocked(topic, ct string, size int) (Generated, error) {
	schemaTopic := topic
	if topic == "/data/ChangeEvents" {
		schemaTopic = channelEntities[g.r.IntN(len(channelEntities))]
	}
	id, rec, err := g.schemaForLocked(schemaTopic)
	if err != nil {
		return Generated{}, err
	}
	entity := entityOf(rec)
	prefix := idPrefixes[entity]
	if prefix == "" {
		prefix = "a0B"
	}
	g.advanceTx(ct)
	hdr := map[string]any{
		"entityName": entity, "recordIds": []string{}, "changeType": ct, "changeOrigin": g.tx.origin,
		"transactionKey": g.tx.key, "sequenceNumber": g.tx.seq, "commitTimestamp": g.tx.commitTS,
		"commitNumber": g.tx.commitNum, "commitUser": g.tx.user,
		"nulledFields": []string{}, "diffFields": []string{}, "changedFields": []string{},
	}
	vals := map[string]any{"ChangeEventHeader": hdr}
	truth := GroundTruth{ChangeType: ct, EntityName: entity, CommitNumber: g.tx.commitNum, SchemaID: id,
		ChangedFields: []string{}, NulledFields: []string{}, DiffFields: []string{}}
	var ids []string
	var changed, nulled, diffs []string
	switch ct {
	case "CREATE":
		ids = []string{g.sfID(prefix)}
		g.records[entity] = append(g.records[entity], ids[0])
		g.fullRecord(rec, vals, ids[0])
	case "UNDELETE":
		if d := g.deleted[entity]; len(d) > 0 {
			ids = []string{d[len(d)-1]}
			g.deleted[entity] = d[:len(d)-1]
		} else {
			ids = []string{g.sfID(prefix)}
		}
		g.records[entity] = append(g.records[entity], ids[0])
		g.fullRecord(rec, vals, ids[0])
	case "UPDATE":
		ids = g.existing(entity, prefix, 1)
		if size == 0 && g.r.IntN(10) == 0 {
			ids = g.existing(entity, prefix, 2+g.r.IntN(3))
		}
		changed, nulled, diffs = g.update(rec, vals, ids[0], size > 0)
	case "DELETE":
		ids = g.existing(entity, prefix, 1)
		g.records[entity] = slices.DeleteFunc(g.records[entity], func(s string) bool { return s == ids[0] })
		g.deleted[entity] = append(g.deleted[entity], ids[0])
	case "GAP_OVERFLOW":
		// Only the entity and the time are known: no record IDs, no transaction details, every field null. The
		// commit time stays, so a time-bounded query (--since) still finds the gap.
		for k, v := range map[string]any{"changeOrigin": "", "transactionKey": "", "sequenceNumber": 0, "commitNumber": int64(0), "commitUser": ""} {
			hdr[k] = v
		}
		truth.CommitNumber = 0
	default: // GAP_CREATE, GAP_UPDATE, GAP_DELETE, GAP_UNDELETE: IDs known, values not.
		ids = g.existing(entity, prefix, 1)
	}
	if ids != nil {
		hdr["recordIds"] = ids
	}
	truth.RecordIDs = append([]string{}, ids...)
	for _, list := range []struct {
		key   string
		names []string
		out   *[]string
	}{{"changedFields", changed, &truth.ChangedFields}, {"nulledFields", nulled, &truth.NulledFields}, {"diffFields", diffs, &truth.DiffFields}} {
		bm, err := BuildBitmap(rec, list.names)
		if err != nil {
			return Generated{}, fmt.Errorf("generate %s: %w", topic, err)
		}
		hdr[list.key] = bm
		if *list.out, err = ExpandBitmap(rec, bm); err != nil {
			return Generated{}, fmt.Errorf("generate %s: %w", topic, err)
		}
	}
	if size > 0 {
		if err := g.pad(rec, vals, "Description", size); err != nil {
			return Generated{}, fmt.Errorf("generate %s: %w", topic, err)
		}
	}
	payload, err := Encode(rec, vals)
	if err != nil {
		return Generated{}, fmt.Errorf("generate %s: %w", topic, err)
	}
	truth.Values = vals
	return Generated{Topic: topic, Event: Event{ID: g.uuid(), SchemaID: id, Payload: payload}, Truth: truth}, nil
}

// advanceTx continues the current transaction or starts a new one.
func (g *Generator) advanceTx(ct string) {
	if g.tx.remaining > 0 && ct != "GAP_OVERFLOW" {
		g.tx.remaining--
		g.tx.seq++
		return
	}
	g.clock = g.clock.Add(time.Duration(200+g.r.IntN(20000)) * time.Millisecond)
	g.commit += 1_000_000 + g.r.Int64N(5_000_000_000)
	g.tx = txState{
		key: g.uuid(), seq: 1, commitTS: g.clock.UnixMilli(), commitNum: g.commit, user: g.userID(),
		origin: g.pick("com/salesforce/api/soap/62.0;client=SfdcInternalAPI/", "com/salesforce/api/rest/62.0;client=workbench/", ""),
	}
	if g.r.IntN(5) == 0 {
		g.tx.remaining = 1 + g.r.IntN(3)
	}
}

// existing returns n live record IDs of entity, inventing them when there are too few.
func (g *Generator) existing(entity, prefix string, n int) []string {
	for len(g.records[entity]) < n {
		g.records[entity] = append(g.records[entity], g.sfID(prefix))
	}
	recs := g.records[entity]
	start := g.r.IntN(len(recs) - n + 1)
	return append([]string{}, recs[start:start+n]...)
}

// personAccount decides, stably per record, whether an Account is a person account.
func personAccount(id string) bool { return id != "" && id[len(id)-4]%5 == 0 }

// fullRecord sets the values a CREATE or UNDELETE sends: most fields populated.
func (g *Generator) fullRecord(rec *avro.RecordSchema, vals map[string]any, id string) {
	ts := g.tx.commitTS
	for i, f := range rec.Fields() {
		if i == 0 {
			continue
		}
		name := f.Name()
		switch name {
		case "CreatedDate", "LastModifiedDate":
			vals[name] = ts
		case "CreatedById", "LastModifiedById", "OwnerId":
			vals[name] = g.tx.user
		case "Name":
			vals[name] = g.nameValue(f.Type(), id)
		default:
			if slices.Contains(systemFields, name) || g.r.IntN(10) < 4 {
				continue
			}
			if v := g.valueFor(name, f.Type()); v != nil {
				vals[name] = v
			}
		}
	}
}

// update picks changed fields for an UPDATE and sets their values. It returns changed, nulled and diff names.
func (g *Generator) update(rec *avro.RecordSchema, vals map[string]any, id string, large bool) (changed, nulled, diffs []string) {
	var candidates []*avro.Field
	for _, f := range rec.Fields() {
		if !slices.Contains(systemFields, f.Name()) {
			candidates = append(candidates, f)
		}
	}
	chosen := map[string]bool{}
	k := 1 + g.r.IntN(3)
	if large {
		k = 0
		if slices.ContainsFunc(candidates, func(f *avro.Field) bool { return f.Name() == "Description" }) {
			chosen["Description"] = true
			changed = append(changed, "Description")
		}
	}
	for len(chosen) < k && len(candidates) > 0 {
		f := candidates[g.r.IntN(len(candidates))]
		if chosen[f.Name()] {
			continue
		}
		chosen[f.Name()] = true
		if sub := recordOf(f.Type()); sub != nil && (f.Name() != "Name" || rec.Name() != "AccountChangeEvent" || personAccount(id)) {
			// A compound field: some sub-fields change; the parent's top-level bit stays clear.
			m := map[string]any{}
			subs := sub.Fields()
			n := 1 + g.r.IntN(min(3, len(subs)))
			for tries := 0; len(m) < n && tries < 50; tries++ {
				sf := subs[g.r.IntN(len(subs))]
				v := g.valueFor(sf.Name(), sf.Type())
				if _, dup := m[sf.Name()]; dup || v == nil {
					continue
				}
				m[sf.Name()] = v
				changed = append(changed, f.Name()+"."+sf.Name())
			}
			vals[f.Name()] = m
			continue
		}
		if f.Name() == "Name" {
			vals["Name"] = g.nameValue(f.Type(), id)
		} else {
			vals[f.Name()] = g.valueFor(f.Name(), f.Type())
		}
		changed = append(changed, f.Name())
		if f.Name() == "Description" && g.r.IntN(4) == 0 {
			vals["Description"] = "@@ -1 +1 @@\n-" + g.pick("Old note.", "Draft.") + "\n+" + g.pick("Renewal agreed.", "Updated by sales ops.") + "\n"
			diffs = append(diffs, "Description")
		}
	}
	// Sometimes a field is cleared.
	if !large && g.r.IntN(5) == 0 {
		f := candidates[g.r.IntN(len(candidates))]
		if !chosen[f.Name()] && recordOf(f.Type()) == nil && f.Name() != "Name" {
			if u, ok := unref(f.Type()).(*avro.UnionSchema); ok && u.Nullable() {
				vals[f.Name()] = nil
				changed = append(changed, f.Name())
				nulled = append(nulled, f.Name())
			}
		}
	}
	vals["LastModifiedDate"] = g.tx.commitTS
	changed = append(changed, "LastModifiedDate")
	if g.r.IntN(3) == 0 && rec.Name() != "" {
		if _, ok := fieldIndex(rec, "LastModifiedById"); ok {
			vals["LastModifiedById"] = g.tx.user
			changed = append(changed, "LastModifiedById")
		}
	}
	return changed, nulled, diffs
}

func fieldIndex(rec *avro.RecordSchema, name string) (int, bool) {
	for i, f := range rec.Fields() {
		if f.Name() == name {
			return i, true
		}
	}
	return 0, false
}

var (
	companies = []string{"Acme", "Globex", "Initech", "Umbrella", "Stark Industries", "Wayne Enterprises", "Hooli", "Vandelay Industries", "Soylent", "Tyrell", "Cyberdyne", "Wonka Industries"}
	suffixes  = []string{"Inc.", "Corp.", "GmbH", "Ltd.", "LLC", "S.A."}
	firsts    = []string{"Ada", "Grace", "Alan", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Radia", "Edsger", "Frances", "Tim"}
	lasts     = []string{"Lovelace", "Hopper", "Turing", "Torvalds", "Hamilton", "Thompson", "Liskov", "Ritchie", "Perlman", "Dijkstra", "Allen", "Berners-Lee"}
	cities    = [][3]string{{"San Francisco", "CA", "94105"}, {"Austin", "TX", "78701"}, {"New York", "NY", "10001"}, {"Chicago", "IL", "60601"}, {"Seattle", "WA", "98101"}, {"Boston", "MA", "02108"}}
	streets   = []string{"Main Street", "Market Street", "Broadway", "Elm Avenue", "Harbor Drive", "Mission Street"}
)

// nameValue returns a Name: a string for business accounts and opportunities, a person-name record otherwise.
func (g *Generator) nameValue(t avro.Schema, id string) any {
	sub := recordOf(t)
	hasString := false
	if u, ok := unref(t).(*avro.UnionSchema); ok {
		for _, b := range u.Types() {
			hasString = hasString || b.Type() == avro.String
		}
	}
	if sub != nil && (!hasString || personAccount(id)) {
		return map[string]any{"Salutation": g.pick("Mr.", "Ms.", "Dr."), "FirstName": g.pick(firsts...), "LastName": g.pick(lasts...)}
	}
	return g.pick(companies...) + " " + g.pick(suffixes...)
}

// valueFor returns a plausible value for a field by name, falling back on its Avro type.
func (g *Generator) valueFor(name string, t avro.Schema) any {
	base := unref(t)
	if u, ok := base.(*avro.UnionSchema); ok {
		for _, b := range u.Types() {
			if b.Type() != avro.Null {
				base = unref(b)
				break
			}
		}
	}
	city := cities[g.r.IntN(len(cities))]
	switch base.Type() {
	case avro.Record:
		rec := base.(*avro.RecordSchema)
		m := map[string]any{}
		for _, f := range rec.Fields() {
			if v := g.valueFor(f.Name(), f.Type()); v != nil {
				m[f.Name()] = v
			}
		}
		return m
	case avro.String:
		switch {
		case name == "Street":
			return fmt.Sprintf("%d %s", 1+g.r.IntN(999), g.pick(streets...))
		case name == "City":
			return city[0]
		case name == "State" || name == "StateCode":
			return city[1]
		case name == "PostalCode":
			return city[2]
		case name == "Country":
			return "United States"
		case name == "CountryCode":
			return "US"
		case name == "GeocodeAccuracy":
			return g.pick("Address", "Street", "Zip")
		case name == "Xyz":
			return nil
		case name == "Salutation":
			return g.pick("Mr.", "Ms.", "Dr.")
		case name == "FirstName":
			return g.pick(firsts...)
		case name == "LastName":
			return g.pick(lasts...)
		case name == "MiddleName" || name == "InformalName" || name == "Suffix":
			return nil
		case strings.Contains(name, "Phone") || name == "Fax":
			return fmt.Sprintf("(%03d) 555-%04d", 200+g.r.IntN(700), g.r.IntN(10000))
		case name == "Email":
			return strings.ToLower(g.pick(firsts...)+"."+g.pick(lasts...)) + "@example.com"
		case name == "Website":
			return "www." + strings.ToLower(strings.ReplaceAll(g.pick(companies...), " ", "")) + ".example.com"
		case name == "OwnerId" || name == "CreatedById" || name == "LastModifiedById" || name == "CreatedById__c":
			return g.userID()
		case name == "AccountId" || name == "ParentId":
			return g.sfID("001")
		case name == "ContactId" || name == "ReportsToId":
			return g.sfID("003")
		case name == "CampaignId":
			return g.sfID("701")
		case name == "Pricebook2Id":
			return g.sfID("01s")
		case name == "IndividualId":
			return g.sfID("0PK")
		case name == "Industry":
			return g.pick("Technology", "Banking", "Retail", "Energy", "Healthcare", "Manufacturing")
		case name == "Type":
			return g.pick("Customer - Direct", "Prospect", "Partner", "New Customer", "Existing Customer - Upgrade")
		case name == "Rating":
			return g.pick("Hot", "Warm", "Cold")
		case name == "Ownership":
			return g.pick("Public", "Private", "Subsidiary")
		case name == "AccountSource" || name == "LeadSource":
			return g.pick("Web", "Phone Inquiry", "Partner Referral", "Trade Show")
		case name == "StageName":
			return g.pick("Prospecting", "Qualification", "Needs Analysis", "Proposal/Price Quote", "Closed Won", "Closed Lost")
		case name == "ForecastCategory" || name == "ForecastCategoryName":
			return g.pick("Pipeline", "BestCase", "Commit", "Closed")
		case name == "Title":
			return g.pick("CEO", "VP Sales", "Buyer", "CFO", "Director of IT")
		case name == "Department":
			return g.pick("Finance", "Sales", "IT", "Operations")
		case name == "Description":
			return g.pick("Key account.", "Met at the trade show.", "Renewal due next quarter.", "Prefers email contact.")
		case name == "Order_Number__c":
			return fmt.Sprintf("ORD-%06d", g.r.IntN(1000000))
		case name == "City__c":
			return city[0]
		case strings.HasSuffix(name, "Id") || strings.HasSuffix(name, "Id__c"):
			return g.sfID("a0B")
		}
		return g.pick("Gold", "Silver", "Bronze", "Pending", "Yes", "No", "Standard", "High")
	case avro.Double, avro.Float:
		switch name {
		case "AnnualRevenue":
			return float64(100_000 * (1 + g.r.IntN(5000)))
		case "Amount", "ExpectedRevenue", "Amount__c":
			return math.Round(g.r.Float64()*500_000*100) / 100
		case "Probability":
			return float64(10 * (1 + g.r.IntN(10)))
		case "Latitude":
			return math.Round((25+g.r.Float64()*20)*1e6) / 1e6
		case "Longitude":
			return math.Round((-120+g.r.Float64()*45)*1e6) / 1e6
		}
		v := math.Round(g.r.Float64()*1000*100) / 100
		if base.Type() == avro.Float {
			return float32(v)
		}
		return v
	case avro.Int:
		return 1 + g.r.IntN(50_000)
	case avro.Long:
		if strings.Contains(name, "Date") && !strings.Contains(name, "DateTime") && !strings.HasPrefix(name, "Created") && !strings.HasPrefix(name, "LastModified") {
			// Date fields: midnight UTC in epoch ms (the real unit is UNCONFIRMED).
			d := g.clock.Truncate(24*time.Hour).AddDate(0, 0, g.r.IntN(120)-30)
			return d.UnixMilli()
		}
		return g.clock.UnixMilli()
	case avro.Boolean:
		return g.r.IntN(2) == 0
	}
	return nil
}
