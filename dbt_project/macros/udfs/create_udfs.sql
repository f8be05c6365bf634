{#
  Value parsers shared by staging models and the quality gates, as SQL functions in schema `util`.
  One definition of "a valid resident ID", "a date", "an amount": the GX checks call these same
  functions, so a gate and a staging flag can never disagree. Each returns null for what it cannot
  parse; the matching *_problem function says why, so a bad value is flagged, never dropped silently.
  No exception blocks, so they are cheap on millions of rows. The small ones are plain SQL, which the
  planner inlines; the ones that read a value several times (resident IDs, dates, months, amounts,
  area codes) are PL/pgSQL with local variables: inlined, every nested call was expanded again, so one
  resident_id_problem cleaned and normalised its value some forty times (the roster's staging took
  20 s for 43k rows; 3-8x faster as PL/pgSQL, same answers on every value of a simulated city).
  The hot ones then take the spelling most values have (18 plain ID characters, 20261105, 400.00)
  in plain SQL the planner inlines, with no bounded repeat in a pattern: PostgreSQL's regex engine
  takes ~1 µs a value over `^[0-9]{17}[0-9X]$`, ~0.2 µs over `^[0-9]+X?$` with the length tested
  apart (`_is_plain_id`). Only the other spellings pay the PL/pgSQL call.
#}
{% macro create_udfs() %}
create schema if not exists util;

{#
  Null forms of feeds.md: blank, null in any case, 无, /, and a lone - (-50 is a number). None is longer
  than four bytes, so a longer value (a name, an ID) skips the pattern (~0.3 µs of every cleaning).
#}
create or replace function util.clean_text(v text) returns text
language sql immutable parallel safe as $fn$
    select case
        when octet_length(btrim(v, E' \t\r\n\u3000')) > 4 then btrim(v, E' \t\r\n\u3000')
        when btrim(v, E' \t\r\n\u3000') ~* '^(|null|无|/|-)$' then null
        else btrim(v, E' \t\r\n\u3000')
    end
$fn$;

{#
  GB 11643's check character of a 17-digit body. PL/pgSQL over one bigint: the digits come out by
  integer division, where the plain-SQL form cut and cast seventeen substrings (2.5x slower, and
  every ID of every feed is checked at least twice a month: the gate and staging).
#}
create or replace function util.gb11643_check_char(body text) returns text
language plpgsql immutable parallel safe as $fn$
declare
    x bigint;
    total int := 0;
begin
    if body !~ '^[0-9]{17}$' then return null; end if;
    x := body::bigint;
    -- One expression: each PL/pgSQL statement costs as much as the arithmetic in it.
    total := {{ _gb11643_sum('x') }};
    return substr('10X98765432', total % 11 + 1, 1);
end
$fn$;

{# Normalisation, not a fix: trim; full-width digits and Ｘ to half-width; x to X; 15 → 18 digits. #}
create or replace function util.resident_id_text(v text) returns text
language sql immutable parallel safe as $fn$
    select upper(translate(util.clean_text(v), '０１２３４５６７８９Ｘｘ', '0123456789XX'))
$fn$;

{#
  The ID as most files deliver it (18 plain characters, check character upper case) needs nothing
  done: a plain-SQL test the planner inlines answers it, and only the other spellings pay a PL/pgSQL
  call (3.0 s → 1.2 s a million IDs in one process; staging and the gates normalise every ID).
#}
create or replace function util.normalize_unusual_resident_id(v text) returns text
language plpgsql immutable parallel safe as $fn$
declare
    c text := util.clean_text(v);
    t text;
    body text;
begin
    if c ~ '^[0-9]{17}[0-9Xx]$' then return upper(c); end if;
    t := upper(translate(c, '０１２３４５６７８９Ｘｘ', '0123456789XX'));
    if t ~ '^[0-9]{15}$' then
        body := substr(t, 1, 6) || '19' || substr(t, 7, 9);
        return body || util.gb11643_check_char(body);
    end if;
    return t;
end
$fn$;

create or replace function util.normalize_resident_id(v text) returns text
language sql immutable parallel safe as $fn$
    select case when {{ _is_plain_id('v') }} then v else util.normalize_unusual_resident_id(v) end
$fn$;

{# 18 plain characters were never 15 digits: the inlined test spares them the cleaning (2.8 s → 1.1 s a million). #}
create or replace function util.resident_id_was_15_digit(v text) returns boolean
language sql immutable parallel safe as $fn$
    select case when {{ _is_plain_id('v', 'Xx') }} then false
                else coalesce(util.resident_id_text(v) ~ '^[0-9]{15}$', false) end
$fn$;

{# The day's arithmetic, not make_date's month end: interval arithmetic cost ~1 µs a date. #}
create or replace function util.make_date_or_null(y int, m int, d int) returns date
language sql immutable parallel safe as $fn$
    select case when not {{ _is_impossible_date('y', 'm', 'd') }} then make_date(y, m, d) end
$fn$;

{# resident_id_problem for the spellings other than 18 plain characters (padded, full-width, 15 digits…). #}
create or replace function util.unusual_resident_id_problem(v text) returns text
language plpgsql immutable parallel safe as $fn$
declare
    c text := util.clean_text(v);
    n text;
    x bigint;
    y int;
    m int;
    d int;
begin
    if c is null then return 'missing'; end if;
    if c ~ '^[0-9]{17}[0-9Xx]$' then
        n := upper(c);
    else
        n := util.resident_id_text(c);
        -- The 15 → 18 conversion is normalize_resident_id's.
        if length(n) = 15 then n := util.normalize_resident_id(n); end if;
        if n !~ '^[0-9]{17}[0-9X]$' then
            -- Asked only of what is not an ID anyway: a value in scientific notation never has that form.
            if c ~* '^[0-9]+(\.[0-9]+)?e\+?[0-9]+$' then return 'scientific_notation'; end if;
            return 'format';
        end if;
    end if;
    -- The seventeen digits as one number: the address, birth date and check come out by division.
    -- Every step is inline: a call to another function (make_date_or_null, gb11643_check_char) cost
    -- as much as the arithmetic, and every ID of every feed is checked at the gate and in staging.
    x := left(n, 17)::bigint;
    if x / 1000000000000000 not in (
            {%- for code in var('id_province_codes') %}{{ code | int }}{{ ", " if not loop.last }}{% endfor -%}
        ) then return 'address_code'; end if;
    y := x / 10000000 % 10000;
    m := x / 100000 % 100;
    d := x / 1000 % 100;
    if {{ _is_impossible_date('y', 'm', 'd') }} then return 'birth_date'; end if;
    if substr(n, 18, 1) <> substr('10X98765432', ({{ _gb11643_sum('x') }}) % 11 + 1, 1) then
        return 'check_character';
    end if;
    return null;
end
$fn$;

{#
  Why a resident ID is unusable, or null when it is valid. An ID that reached us as a number (an XLSX
  numeric cell, or text in scientific notation) has lost digits: invalid whatever it looks like.
  An ID spelled as most are is checked inline (5.2 → ~2.5 µs an ID in one process). is_numeric_cell
  is read once: an argument read twice must be cheap for the planner to inline the function, and the
  staging models pass an expression for it.
#}
create or replace function util.resident_id_problem(v text, is_numeric_cell boolean default false) returns text
language sql immutable parallel safe as $fn$
    select case
        when coalesce(is_numeric_cell, false) then
            case when util.clean_text(v) is null then 'missing' else 'numeric_cell' end
        when {{ _is_plain_id('v') }} then
            case
                when left(v, 2)::int not in (
                    {%- for code in var('id_province_codes') %}{{ code | int }}{{ ", " if not loop.last }}{% endfor -%}
                    ) then 'address_code'
                when {{ _is_impossible_date('substr(v, 7, 4)::int', 'substr(v, 11, 2)::int', 'substr(v, 13, 2)::int') }}
                    then 'birth_date'
                when right(v, 1) <> substr('10X98765432', ({{ _gb11643_sum_of_text('v') }}) % 11 + 1, 1)
                    then 'check_character'
            end
        else util.unusual_resident_id_problem(v)
    end
$fn$;

create or replace function util.resident_id_birth_date(normalized_id text) returns date
language sql immutable parallel safe as $fn$
    select case when {{ _is_plain_id('normalized_id') }} then
        util.make_date_or_null(substr(normalized_id, 7, 4)::int, substr(normalized_id, 11, 2)::int,
                               substr(normalized_id, 13, 2)::int) end
$fn$;

{# Odd sequence digit = male. #}
create or replace function util.resident_id_gender(normalized_id text) returns text
language sql immutable parallel safe as $fn$
    select case when {{ _is_plain_id('normalized_id') }} then
        case when substr(normalized_id, 17, 1)::int % 2 = 1 then '男' else '女' end end
$fn$;

{#
  Dates: 2026-11-05, 2026/11/5, 20261105, 2026年11月5日, an XLSX date cell (loaded as ISO text),
  and Excel serial numbers, but only from XLSX numeric cells (epoch 1899-12-30; whole days count, and
  only years 1900-2999, as for written dates). A time of day may
  follow a date (an XLSX datetime cell, Excel's CSV `2026/11/5 0:00`); any other trailing text makes
  the value invalid, not a date with its words dropped.
#}
create or replace function util.excel_serial_date(v text) returns date
language plpgsql immutable parallel safe as $fn$
declare
    c text := util.clean_text(v);
    serial int;
begin
    if c ~ '^[0-9]{1,6}(\.[0-9]+)?$' then
        serial := split_part(c, '.', 1)::int;
        if date '1899-12-30' + serial between date '1900-01-01' and date '2999-12-31' then
            return date '1899-12-30' + serial;
        end if;
    end if;
    return null;
end
$fn$;

create or replace function util.parse_unusual_date(v text) returns date
language plpgsql immutable parallel safe as $fn$
declare
    c text := util.clean_text(v);
    parts text[];
    y int;
    m int;
    d int;
begin
    -- The shapes most files use first, by plain matches: the one pattern with the optional time of
    -- day in it costs PostgreSQL's regex engine ~30 µs a value (a month of claims dated 2026-11-05
    -- took 14 s to parse, the same month written 20261105 one). Same answers: a time needs a space.
    if c ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' then
        y := substr(c, 1, 4)::int; m := substr(c, 6, 2)::int; d := substr(c, 9, 2)::int;
    elsif c ~ '^[0-9]{8}$' then
        y := substr(c, 1, 4)::int; m := substr(c, 5, 2)::int; d := substr(c, 7, 2)::int;
    else
        if strpos(c, ' ') > 0 then
            parts := regexp_match(c, '^([0-9]{4})[-/年]([0-9]{1,2})[-/月]([0-9]{1,2})日?( [0-9]{1,2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?)?$');
        else
            parts := regexp_match(c, '^([0-9]{4})[-/年]([0-9]{1,2})[-/月]([0-9]{1,2})日?$');
        end if;
        y := parts[1]::int; m := parts[2]::int; d := parts[3]::int;
    end if;
    -- make_date_or_null's rule, inline (a SQL function called from PL/pgSQL is not inlined).
    if {{ _is_impossible_date('y', 'm', 'd') }} then return null; end if;
    return make_date(y, m, d);
end
$fn$;

{#
  The spellings files use, inline: 20261105, 2026-11-05, and a year, month and day with - / or 年月日
  between them (2026/11/5, 2026年11月5日). In parse_unusual_date the last two took a capturing
  regexp_match, 7-30 µs a value (a month of house-safety rows: 10 s of its staging). A blank cell is
  null at once. is_numeric_cell is read once (see resident_id_problem).
#}
create or replace function util.parse_date(v text, is_numeric_cell boolean default false) returns date
language sql immutable parallel safe as $fn$
    select case
        when coalesce(is_numeric_cell, false) then util.excel_serial_date(v)
        when v is null then null
        when octet_length(v) = 8 and v ~ '^[0-9]+$' then
            util.make_date_or_null(substr(v, 1, 4)::int, substr(v, 5, 2)::int, substr(v, 7, 2)::int)
        when octet_length(v) = 10 and v ~ '^[0-9]+-[0-9]+-[0-9]+$' and substr(v, 5, 1) = '-' and substr(v, 8, 1) = '-' then
            util.make_date_or_null(substr(v, 1, 4)::int, substr(v, 6, 2)::int, substr(v, 9, 2)::int)
        when {{ _is_plain_ymd('v') }} then
            util.make_date_or_null(substr(v, 1, 4)::int, {{ _ymd_part('v', 2) }}::int, {{ _ymd_part('v', 3) }}::int)
        else util.parse_unusual_date(v)
    end
$fn$;

create or replace function util.date_problem(v text, is_numeric_cell boolean default false) returns text
language sql immutable parallel safe as $fn$
    select case
        when util.clean_text(v) is null then null
        when util.parse_date(v, is_numeric_cell) is null then 'invalid_date'
    end
$fn$;

{# Months: 2026-11, 202611, 2026年11月 → the month's first day. #}
create or replace function util.parse_unusual_month(v text) returns date
language plpgsql immutable parallel safe as $fn$
declare
    c text := util.clean_text(v);
    parts text[];
begin
    parts := coalesce(regexp_match(c, '^([0-9]{4})[-/年]([0-9]{1,2})月?$'), regexp_match(c, '^([0-9]{4})([0-9]{2})$'));
    return util.make_date_or_null(parts[1]::int, parts[2]::int, 1);
end
$fn$;

{# 202611, 2026-11, 2026/11 and 2026年11月 inline, without parse_unusual_month's capturing match (~4 µs). #}
create or replace function util.parse_month(v text) returns date
language sql immutable parallel safe as $fn$
    select case
        when v is null then null
        when octet_length(v) = 6 and v ~ '^[0-9]+$' then util.make_date_or_null(substr(v, 1, 4)::int, substr(v, 5, 2)::int, 1)
        when v ~ '^[0-9][0-9][0-9][0-9][-/年][0-9][0-9]?月?$' then
            util.make_date_or_null(substr(v, 1, 4)::int, {{ _ymd_part('v', 2) }}::int, 1)
        else util.parse_unusual_month(v)
    end
$fn$;

{#
  Amounts: 1234.5, 1,234.50, 1234.50元; a trailing 元 is ignored (the header names the unit). At most
  15 integer digits, as many as a spreadsheet number keeps (a longer run of digits overflowed numeric
  and failed the whole query); the fraction may be as long as a float's repr (0.30000000000000004).
#}
create or replace function util.parse_unusual_amount(v text) returns numeric
language plpgsql immutable parallel safe as $fn$
declare
    a text := util.clean_text(v);
begin
    -- The separators are stripped only from what is not a plain number already.
    if a ~ '^[-+]?[0-9]{1,15}(\.[0-9]{1,30})?元?$' then return rtrim(a, '元')::numeric; end if;
    a := regexp_replace(replace(replace(a, ',', ''), '，', ''), '元$', '');
    if a ~ '^[-+]?[0-9]{1,15}(\.[0-9]{1,30})?$' then return a::numeric; end if;
    return null;
end
$fn$;

{#
  Most amounts are plain numbers, with or without 元 (the enrollment feed writes 400.00元): at most 15
  bytes cannot break either limit, and they are read inline.
#}
create or replace function util.parse_amount(v text) returns numeric
language sql immutable parallel safe as $fn$
    select case when octet_length(v) <= 15 and v ~ '^[0-9]+(\.[0-9]+)?元?$' then rtrim(v, '元')::numeric
                -- Blank, and the dash claims write for no payment (half of some columns), are null at once.
                when v is null or v in ('', '-', '/', '无') then null
                else util.parse_unusual_amount(v) end
$fn$;

create or replace function util.parse_integer(v text) returns bigint
language sql immutable parallel safe as $fn$
    select case
        when octet_length(v) <= 15 and v ~ '^[0-9]+$' then v::bigint
        when util.clean_text(v) ~ '^[-+]?[0-9]{1,15}(\.0+)?$' then split_part(util.clean_text(v), '.', 1)::bigint
    end
$fn$;

{# Yes/no: 是/否, Y/N, y/n, 1/0. #}
create or replace function util.parse_yesno(v text) returns boolean
language sql immutable parallel safe as $fn$
    select case
        when util.clean_text(v) in ('是', 'Y', 'y', '1') then true
        when util.clean_text(v) in ('否', 'N', 'n', '0') then false
    end
$fn$;

{# 学年: 2026-2027 or 2026 → the first year. 参保年度/统计年度: four digits. #}
create or replace function util.parse_year(v text) returns int
language sql immutable parallel safe as $fn$
    select case
        when octet_length(v) = 4 and v ~ '^[0-9]+$' then v::int
        when util.clean_text(v) ~ '^[0-9]{4}$' then util.clean_text(v)::int
    end
$fn$;

create or replace function util.parse_school_year(v text) returns int
language sql immutable parallel safe as $fn$
    select case
        when util.clean_text(v) ~ '^[0-9]{4}$' then util.clean_text(v)::int
        when util.clean_text(v) ~ '^[0-9]{4}-[0-9]{4}$'
             and split_part(util.clean_text(v), '-', 2)::int = split_part(util.clean_text(v), '-', 1)::int + 1
            then split_part(util.clean_text(v), '-', 1)::int
    end
$fn$;

{# Area codes are always 12 digits; county and town codes are zero-padded. #}
create or replace function util.area_level(code text) returns text
language sql immutable parallel safe as $fn$
    select case
        when not (octet_length(code) = 12 and code ~ '^[0-9]+$') then null
        when substr(code, 5, 8) = '00000000' then '市'
        when substr(code, 7, 6) = '000000' then '县'
        when substr(code, 10, 3) = '000' then '镇'
        else '村'
    end
$fn$;

create or replace function util.unusual_area_code_problem(v text, required_level text) returns text
language plpgsql immutable parallel safe as $fn$
declare
    c text := util.clean_text(v);
begin
    if c is null then return null; end if;
    if c !~ '^[0-9]{12}$' then return 'format'; end if;
    if required_level = 'village' and util.area_level(c) <> '村' then return 'not_village_level'; end if;
    if required_level = 'town_or_village' and util.area_level(c) not in ('镇', '村') then
        return 'not_town_or_village_level';
    end if;
    return null;
end
$fn$;

{# Twelve plain digits, as nearly every code is written, inline. #}
create or replace function util.area_code_problem(v text, required_level text default 'any') returns text
language sql immutable parallel safe as $fn$
    select case
        when octet_length(v) = 12 and v ~ '^[0-9]+$' then
            case
                when required_level = 'village' and util.area_level(v) <> '村' then 'not_village_level'
                when required_level = 'town_or_village' and util.area_level(v) not in ('镇', '村')
                    then 'not_town_or_village_level'
            end
        else util.unusual_area_code_problem(v, required_level)
    end
$fn$;

{# Masking wherever a person who is not an engineer reads (feeds.md). #}
create or replace function util.mask_resident_id(v text) returns text
language sql immutable parallel safe as $fn$
    select case when length(v) > 10 then left(v, 6) || repeat('*', length(v) - 10) || right(v, 4)
                when v is not null then repeat('*', length(v)) end
$fn$;

create or replace function util.mask_phone(v text) returns text
language sql immutable parallel safe as $fn$
    select case when length(v) >= 7 then left(v, 3) || repeat('*', length(v) - 7) || right(v, 4)
                when v is not null then repeat('*', length(v)) end
$fn$;

create or replace function util.mask_name(v text) returns text
language sql immutable parallel safe as $fn$
    select case when v is not null then left(v, 1) || '**' end
$fn$;
{% endmacro %}


{#
  Whether v is an ID as most files spell it: 18 characters, digits but for a check character X (or x
  with check_chars='Xx'). The same test as `^[0-9]{17}[0-9X]$`, in a fifth of the time.
#}
{% macro _is_plain_id(v, check_chars='X') -%}
    (octet_length({{ v }}) = 18 and {{ v }} ~ '^[0-9]+[{{ check_chars }}]?$')
{%- endmacro %}


{#
  Whether v is a date as files write it with separators: four digits, one of - / 年, one or two digits,
  one of - / 月, one or two digits, perhaps 日: parse_unusual_date's pattern without the time of day,
  written with no capture and no bounded repeat.
#}
{% macro _is_plain_ymd(v) -%}
    ({{ v }} ~ '^[0-9][0-9][0-9][0-9][-/年][0-9][0-9]?[-/月][0-9][0-9]?日?$')
{%- endmacro %}


{# Part n (1 year, 2 month, 3 day) of a date or month that matched _is_plain_ymd's or parse_month's pattern. #}
{% macro _ymd_part(v, n) -%}
    split_part(translate({{ v }}, '/年月日', '---'), '-', {{ n }})
{%- endmacro %}


{# Whether year y, month m and day d name no day of 1900-2999 (null when one is null). #}
{% macro _is_impossible_date(y, m, d) -%}
    ({{ y }} < 1900 or {{ y }} > 2999 or {{ m }} < 1 or {{ m }} > 12 or {{ d }} < 1
     or ({{ d }} > 28 and {{ d }} > {{ _days_in_month(y, m) }}))
{%- endmacro %}


{# The number of days in month m of year y, as a SQL expression (Gregorian leap years). #}
{% macro _days_in_month(y, m) -%}
    (case when {{ m }} = 2 then case when {{ y }} % 4 = 0 and ({{ y }} % 100 <> 0 or {{ y }} % 400 = 0) then 29 else 28 end
          when {{ m }} in (4, 6, 9, 11) then 30 else 31 end)
{%- endmacro %}


{# GB 11643's weights of the seventeen digits, first to last. #}
{% macro _gb11643_weights() -%}
    {{ return([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]) }}
{%- endmacro %}


{# GB 11643's weighted sum of the seventeen digits of the bigint x (the check character is its mod 11). #}
{% macro _gb11643_sum(x) -%}
    {% for weight in _gb11643_weights() -%}
        {{ '' if loop.first else ' + ' }}({{ x }} / {{ 10 ** (17 - loop.index) }} % 10)::int * {{ weight }}
    {%- endfor %}
{%- endmacro %}


{# The same sum over the first seventeen characters of text v, each digit by its character code. #}
{% macro _gb11643_sum_of_text(v) -%}
    {% for weight in _gb11643_weights() -%}
        {{ '' if loop.first else ' + ' }}(ascii(substr({{ v }}, {{ loop.index }}, 1)) - 48) * {{ weight }}
    {%- endfor %}
{%- endmacro %}


{# `dbt run-operation install_udfs`: the same functions outside a build (the gates need them first). #}
{% macro install_udfs() %}
    {% do run_query(create_udfs()) %}
    {{ log("util.* functions installed", info=True) }}
{% endmacro %}
