"""Invented tool schemas (OpenAI function format) for heldout-open-world.jsonl, by domain."""

from __future__ import annotations

_NO = object()


def fn(name, description, props=None, required=()):
    props = props or {}
    assert set(required) <= set(props), name
    return {"type": "function", "function": {"name": name, "description": description,
                                             "parameters": {"type": "object", "properties": props, "required": list(required)}}}


def _p(typ, desc, default=_NO, **kw):
    d = {"type": typ, "description": desc, **kw}
    if default is not _NO:
        d["default"] = default
    return d


def s(desc, default=_NO, enum=None):
    return _p("string", desc, default, **({"enum": enum} if enum else {}))


def i(desc, default=_NO, **kw):
    return _p("integer", desc, default, **kw)


def n(desc, default=_NO, **kw):
    return _p("number", desc, default, **kw)


def b(desc, default=_NO):
    return _p("boolean", desc, default)


def arr(desc, item="string", default=_NO):
    return _p("array", desc, default, items={"type": item})


def obj(desc, props, required):
    return {"type": "object", "description": desc, "properties": props, "required": list(required)}


DATE = "Date as YYYY-MM-DD."
DATETIME = "Local date and time, ISO 8601 (YYYY-MM-DDTHH:MM)."

_ALL = [
    # weather
    fn("get_current_weather", "Current conditions (temperature, sky, wind) for a place.",
       {"location": s("City name, optionally with country."), "units": s("Temperature units.", "celsius", ["celsius", "fahrenheit"])},
       ["location"]),
    fn("weather.forecast", "Daily weather forecast for the coming days.",
       {"city": s("City name."), "days": i("Number of days to forecast, 1-14.", 3, minimum=1, maximum=14),
        "include_hourly": b("Also return hour-by-hour values.", False)}, ["city"]),
    fn("getAirQuality", "Latest air-quality reading for a city, for one pollutant or the overall index.",
       {"city": s("City name."), "pollutant": s("Pollutant to report; omit for the overall AQI.", enum=["pm25", "pm10", "o3", "no2", "so2"])},
       ["city"]),
    fn("get_uv_index", "Current UV index at a coordinate.",
       {"lat": n("Latitude in degrees (north positive)."), "lon": n("Longitude in degrees (east positive).")}, ["lat", "lon"]),
    # banking
    fn("bank.get_balance", "Current balance of one of the user's accounts.",
       {"account_id": s("Account identifier, e.g. CHK-12345."), "currency": s("ISO currency code to convert the balance into.", enum=["USD", "EUR", "GBP", "JPY"])},
       ["account_id"]),
    fn("bank.transfer_funds", "Moves money between two of the user's accounts.",
       {"from_account": s("Source account id."), "to_account": s("Destination account id."), "amount": n("Amount in the account currency."),
        "memo": s("Optional note shown on the statement.")}, ["from_account", "to_account", "amount"]),
    fn("bank.list_transactions", "Lists transactions on an account in a date range.",
       {"account_id": s("Account id."), "start_date": s(DATE), "end_date": s(DATE),
        "min_amount": n("Only transactions of at least this amount.")}, ["account_id", "start_date", "end_date"]),
    fn("bank.freeze_card", "Temporarily blocks a payment card.",
       {"card_last4": s("Last four digits of the card."), "reason": s("Why the card is frozen.", enum=["lost", "stolen", "suspicious_activity"])},
       ["card_last4", "reason"]),
    fn("bank.list_accounts", "Lists the user's accounts with their ids and types.", {}, []),
    # recipes
    fn("search_recipes", "Finds recipes that use the given ingredients.",
       {"ingredients": arr("Ingredients to use."), "max_minutes": i("Longest total cooking time in minutes."),
        "diet": s("Dietary restriction.", enum=["vegetarian", "vegan", "gluten_free", "keto", "none"])}, ["ingredients"]),
    fn("recipes.get_nutrition", "Nutrition facts (calories, protein, fat, carbs) for a dish.",
       {"recipe_name": s("Name of the dish."), "servings": i("Number of servings to total.", 1, minimum=1)}, ["recipe_name"]),
    fn("convertCookingUnits", "Converts a cooking quantity between units.",
       {"quantity": n("Amount to convert."), "from_unit": s("Unit of the amount.", enum=["cup", "tablespoon", "teaspoon", "gram", "ounce", "milliliter", "pound"]),
        "to_unit": s("Target unit.", enum=["cup", "tablespoon", "teaspoon", "gram", "ounce", "milliliter", "pound"]),
        "ingredient": s("Ingredient, needed for volume-to-weight conversions.")}, ["quantity", "from_unit", "to_unit"]),
    fn("scale_recipe", "Rescales a saved recipe to a new number of servings.",
       {"recipe_id": s("Saved recipe id, e.g. R-1234."), "servings": i("New number of servings.", minimum=1)}, ["recipe_id", "servings"]),
    # fitness
    fn("log_workout", "Records a workout in the user's fitness log.",
       {"activity": s("Kind of workout.", enum=["running", "cycling", "swimming", "walking", "yoga", "strength"]),
        "duration_minutes": i("Duration in minutes.", minimum=1), "distance_km": n("Distance covered in kilometres."),
        "date": s(DATE + " Defaults to today.")}, ["activity", "duration_minutes"]),
    fn("fitness.get_step_count", "Step count recorded by the user's tracker on a given day.", {"date": s(DATE)}, ["date"]),
    fn("calculateBMI", "Body-mass index from weight and height.",
       {"weight_kg": n("Body weight in kilograms."), "height_cm": n("Height in centimetres.")}, ["weight_kg", "height_cm"]),
    fn("set_daily_goal", "Sets a daily fitness target.",
       {"metric": s("What the goal measures.", enum=["steps", "calories", "active_minutes"]), "target": i("Target value per day.", minimum=1)},
       ["metric", "target"]),
    # shipping / logistics
    fn("track_package", "Current status and location of a parcel.",
       {"tracking_number": s("Carrier tracking number."), "carrier": s("Carrier, if known.", enum=["ups", "fedex", "dhl", "usps"])},
       ["tracking_number"]),
    fn("shipping.get_quote", "Price quote for sending a parcel.",
       {"origin_zip": s("Sender postal code."), "destination_zip": s("Recipient postal code."), "weight_kg": n("Parcel weight in kg."),
        "express": b("Next-day service instead of standard.", False)}, ["origin_zip", "destination_zip", "weight_kg"]),
    fn("schedule_pickup", "Books a courier pickup at an address.",
       {"address": s("Street address for the pickup."), "date": s(DATE), "window": s("Time window.", enum=["morning", "afternoon", "evening"])},
       ["address", "date", "window"]),
    fn("createShipmentLabel", "Creates a printable shipping label.",
       {"sender": obj("Who sends it.", {"name": s("Full name."), "zip": s("Postal code.")}, ["name", "zip"]),
        "recipient": obj("Who receives it.", {"name": s("Full name."), "zip": s("Postal code.")}, ["name", "zip"]),
        "weight_lb": n("Weight in pounds.")}, ["sender", "recipient", "weight_lb"]),
    # astronomy
    fn("get_moon_phase", "Moon phase and illumination on a date.", {"date": s(DATE)}, ["date"]),
    fn("astro.next_visible_pass", "Next time a satellite is visible from a location.",
       {"satellite": s("Satellite name, e.g. ISS or Hubble."), "latitude": n("Observer latitude in degrees, north positive."),
        "longitude": n("Observer longitude in degrees, east positive.")}, ["satellite", "latitude", "longitude"]),
    fn("getPlanetPosition", "Altitude and azimuth of a planet for an observer on a date.",
       {"planet": s("Planet.", enum=["mercury", "venus", "mars", "jupiter", "saturn", "uranus", "neptune"]), "date": s(DATE),
        "observer_city": s("City of the observer; defaults to the user's home city.")}, ["planet", "date"]),
    fn("sunrise_sunset", "Sunrise and sunset times for a city on a date.", {"city": s("City name."), "date": s(DATE)}, ["city", "date"]),
    # music
    fn("music.search_tracks", "Searches the music catalogue for tracks.",
       {"query": s("Song title or free-text search."), "artist": s("Restrict to this artist."),
        "limit": i("Maximum number of results.", 10, minimum=1, maximum=50)}, ["query"]),
    fn("create_playlist", "Creates a playlist from track ids.",
       {"name": s("Playlist name."), "track_ids": arr("Track ids to add, in order."), "public": b("Visible to other users.", False)},
       ["name", "track_ids"]),
    fn("getLyrics", "Lyrics of a song.", {"song_title": s("Song title."), "artist": s("Performing artist.")}, ["song_title"]),
    fn("player.pause", "Pauses whatever the music player is playing."),
    fn("player.set_volume", "Sets the music player's volume.", {"level": i("Volume from 0 to 100.", minimum=0, maximum=100)}, ["level"]),
    # real estate
    fn("search_listings", "Searches homes for sale.",
       {"city": s("City."), "max_price": i("Highest asking price in dollars."), "min_bedrooms": i("Minimum number of bedrooms.", 0),
        "property_type": s("Kind of property.", enum=["house", "apartment", "condo", "townhouse"])}, ["city"]),
    fn("estimate_mortgage", "Monthly payment for a fixed-rate mortgage.",
       {"principal": n("Loan amount in dollars."), "annual_rate_percent": n("Annual interest rate in percent, e.g. 6.5."),
        "years": i("Loan term in years.", 30)}, ["principal", "annual_rate_percent"]),
    fn("realestate.get_property_details", "Full details (size, year built, taxes, photos) of one listing.",
       {"listing_id": s("Listing id, e.g. LX-1234.")}, ["listing_id"]),
    fn("schedule_viewing", "Books a viewing of a listing.", {"listing_id": s("Listing id."), "datetime": s(DATETIME)},
       ["listing_id", "datetime"]),
    # HR
    fn("hr.request_time_off", "Files a time-off request.",
       {"employee_id": s("Employee id, e.g. E-1234."), "start_date": s(DATE), "end_date": s(DATE + " Same as start for one day."),
        "type": s("Kind of leave.", enum=["vacation", "sick", "personal"])}, ["employee_id", "start_date", "end_date", "type"]),
    fn("getEmployeeDirectory", "Looks up colleagues by name or department (phone, email, office).",
       {"name": s("Full or partial name."), "department": s("Department name.")}, []),
    fn("hr.get_pto_balance", "Remaining paid-time-off days of an employee.", {"employee_id": s("Employee id.")}, ["employee_id"]),
    fn("submit_expense", "Submits an expense claim.",
       {"amount": n("Amount spent."), "currency": s("Currency of the amount.", "USD", ["USD", "EUR", "GBP"]),
        "category": s("Expense category.", enum=["travel", "meals", "office_supplies", "software", "other"]),
        "description": s("What it was for."), "receipt_attached": b("Whether a receipt is attached.", False)},
       ["amount", "category", "description"]),
    # chemistry
    fn("get_molar_mass", "Molar mass in g/mol of a chemical formula.", {"formula": s("Chemical formula, e.g. H2O.")}, ["formula"]),
    fn("chem.balance_equation", "Balances a chemical equation.", {"equation": s("Unbalanced equation, e.g. 'H2 + O2 -> H2O'.")}, ["equation"]),
    fn("lookup_element", "Properties of a chemical element (mass, melting point, group, ...).",
       {"identifier": s("Element symbol, name or atomic number.")}, ["identifier"]),
    fn("chem.convert_concentration", "Converts a solution concentration between units.",
       {"value": n("Concentration value."), "from_unit": s("Unit of value.", enum=["molar", "millimolar", "ppm", "percent"]),
        "to_unit": s("Target unit.", enum=["molar", "millimolar", "ppm", "percent"]),
        "solute_formula": s("Formula of the solute, needed between mass and molar units.")}, ["value", "from_unit", "to_unit"]),
    # gardening
    fn("plant_care_info", "Care guide for a plant: light, water, soil, common problems.", {"plant_name": s("Common or Latin name.")}, ["plant_name"]),
    fn("garden.watering_schedule", "How often and how much to water a plant.",
       {"plant": s("Plant name."), "climate_zone": i("USDA hardiness zone, 1-13.", minimum=1, maximum=13),
        "in_pot": b("Grown in a container rather than the ground.", False)}, ["plant"]),
    fn("frost_date_lookup", "Average first or last frost date for a postal code.",
       {"zip_code": s("US ZIP code."), "which": s("Which frost date.", "last", ["first", "last"])}, ["zip_code"]),
    fn("companionPlants", "Plants that grow well (and badly) next to a crop.", {"crop": s("Crop name.")}, ["crop"]),
    # parking
    fn("find_parking", "Finds parking garages and lots near a place.",
       {"near": s("Address or landmark."), "max_price_per_hour": n("Highest hourly rate in dollars."),
        "covered": b("Only covered / indoor parking.", False)}, ["near"]),
    fn("parking.pay_meter", "Pays a street parking zone for a vehicle.",
       {"zone_id": s("Zone number shown on the meter."), "license_plate": s("Vehicle plate."), "minutes": i("Minutes to pay for.", minimum=5)},
       ["zone_id", "license_plate", "minutes"]),
    fn("parking.extend_session", "Adds time to an active parking session.",
       {"session_id": s("Session id, e.g. PS-12345."), "extra_minutes": i("Minutes to add.", minimum=5)}, ["session_id", "extra_minutes"]),
    # pets
    fn("pets.find_vet", "Finds veterinary clinics near a ZIP code.",
       {"zip_code": s("ZIP code."), "emergency": b("Only clinics with 24h emergency care.", False)}, ["zip_code"]),
    fn("log_pet_feeding", "Records a meal for a pet.",
       {"pet_name": s("Pet's name."), "food": s("What was fed."), "grams": i("Amount in grams.", minimum=1)}, ["pet_name", "food", "grams"]),
    fn("get_breed_info", "Temperament, size, grooming and health notes for a dog or cat breed.",
       {"breed": s("Breed name."), "species": s("Species.", enum=["dog", "cat"])}, ["breed", "species"]),
    fn("book_grooming", "Books a grooming appointment.",
       {"pet_name": s("Pet's name."), "service": s("Service.", enum=["bath", "haircut", "nail_trim", "full_groom"]), "date": s(DATE)},
       ["pet_name", "service", "date"]),
    # travel
    fn("hotels.search", "Searches hotel availability.",
       {"city": s("City."), "check_in": s(DATE), "check_out": s(DATE), "guests": i("Number of guests.", 1, minimum=1),
        "max_price": n("Highest nightly price.")}, ["city", "check_in", "check_out"]),
    fn("get_flight_status", "Live status (on time, delayed, departed) of a flight.",
       {"flight_number": s("Airline code and number, e.g. BA283."), "date": s(DATE)}, ["flight_number", "date"]),
    fn("currency.convert", "Converts an amount between currencies at today's rate.",
       {"amount": n("Amount to convert."), "from_currency": s("ISO 4217 code, e.g. USD."), "to_currency": s("ISO 4217 code.")},
       ["amount", "from_currency", "to_currency"]),
    # calendar / productivity
    fn("calendar.create_event", "Adds an event to the user's calendar.",
       {"title": s("Event title."), "start": s(DATETIME), "duration_minutes": i("Length in minutes.", 60, minimum=1),
        "attendees": arr("Email addresses to invite.")}, ["title", "start"]),
    fn("todo_add", "Adds a task to the to-do list.",
       {"task": s("What to do."), "due_date": s(DATE), "priority": s("Priority.", "medium", ["low", "medium", "high"])}, ["task"]),
    fn("set_reminder", "Sets a reminder that notifies the user at a time.",
       {"message": s("Reminder text."), "time": s(DATETIME)}, ["message", "time"]),
    # smart home
    fn("home.set_thermostat", "Sets the target temperature of a thermostat.",
       {"temperature": n("Target temperature."), "unit": s("Unit of temperature.", "C", ["C", "F"]),
        "room": s("Room with its own thermostat; whole house if omitted.")}, ["temperature"]),
    fn("setLight", "Turns a room's lights on or off and optionally sets brightness.",
       {"room": s("Room name."), "on": b("True to switch on, false to switch off."), "brightness": i("Brightness in percent.", minimum=1, maximum=100)},
       ["room", "on"]),
    fn("lock_door", "Locks a smart door lock.", {"door": s("Which door.", enum=["front", "back", "garage", "patio"])}, ["door"]),
    # library
    fn("library.search_catalog", "Searches the public library catalogue.",
       {"query": s("Title, author or keywords."), "format": s("Format.", enum=["print", "ebook", "audiobook", "any"])}, ["query"]),
    fn("renew_loan", "Renews a borrowed item.", {"loan_id": s("Loan id, e.g. L-123456.")}, ["loan_id"]),
    fn("placeHold", "Places a hold on a title for pickup at a branch.", {"isbn": s("ISBN-10 or ISBN-13."), "branch": s("Pickup branch.")},
       ["isbn", "branch"]),
    # sports
    fn("get_match_score", "Final or live score of a team's match on a date.",
       {"team": s("Team name."), "date": s(DATE + " Most recent match if omitted.")}, ["team"]),
    fn("sports.league_standings", "League table for a season.", {"league": s("League name, e.g. NBA, Premier League."), "season": s("Season, e.g. 2023-24.")},
       ["league", "season"]),
    fn("player_stats", "Season statistics of a player.", {"player_name": s("Player's full name."), "season": s("Season, e.g. 2022-23.")},
       ["player_name", "season"]),
    # pharmacy
    fn("refill_prescription", "Requests a refill of a prescription at a pharmacy.",
       {"rx_number": s("Prescription number."), "pharmacy_id": s("Pharmacy store id.")}, ["rx_number", "pharmacy_id"]),
    fn("check_drug_interaction", "Checks a list of medications for known interactions.", {"drugs": arr("Drug names (two or more).")}, ["drugs"]),
    fn("find_pharmacy", "Finds pharmacies near a ZIP code.", {"zip_code": s("ZIP code."), "open_now": b("Only pharmacies open now.", False)},
       ["zip_code"]),
    # transit
    fn("transit.next_departures", "Next departures from a transit stop.",
       {"stop_id": s("Stop id."), "route": s("Only this route."), "limit": i("How many departures.", 5, minimum=1, maximum=20)}, ["stop_id"]),
    fn("plan_trip", "Plans a public-transit trip between two places.",
       {"origin": s("Start place."), "destination": s("End place."), "depart_at": s(DATETIME),
        "mode": s("Preferred mode.", "any", ["any", "bus", "train", "subway", "tram"])}, ["origin", "destination"]),
    # language
    fn("translate_text", "Translates text into another language.",
       {"text": s("Text to translate."), "target_language": s("Language to translate into."),
        "source_language": s("Language of the text; detected if omitted.")}, ["text", "target_language"]),
]

TOOLS = {t["function"]["name"]: t for t in _ALL}
assert len(TOOLS) == len(_ALL)

DOMAINS = {
    "weather": ["get_current_weather", "weather.forecast", "getAirQuality", "get_uv_index"],
    "banking": ["bank.list_accounts", "bank.get_balance", "bank.transfer_funds", "bank.list_transactions", "bank.freeze_card"],
    "recipes": ["search_recipes", "recipes.get_nutrition", "convertCookingUnits", "scale_recipe"],
    "fitness": ["log_workout", "fitness.get_step_count", "calculateBMI", "set_daily_goal"],
    "shipping": ["track_package", "shipping.get_quote", "schedule_pickup", "createShipmentLabel"],
    "astronomy": ["get_moon_phase", "astro.next_visible_pass", "getPlanetPosition", "sunrise_sunset"],
    "music": ["music.search_tracks", "create_playlist", "getLyrics", "player.pause", "player.set_volume"],
    "real estate": ["search_listings", "estimate_mortgage", "realestate.get_property_details", "schedule_viewing"],
    "HR": ["hr.request_time_off", "getEmployeeDirectory", "hr.get_pto_balance", "submit_expense"],
    "chemistry": ["get_molar_mass", "chem.balance_equation", "lookup_element", "chem.convert_concentration"],
    "gardening": ["plant_care_info", "garden.watering_schedule", "frost_date_lookup", "companionPlants"],
    "parking": ["find_parking", "parking.pay_meter", "parking.extend_session"],
    "pets": ["pets.find_vet", "log_pet_feeding", "get_breed_info", "book_grooming"],
    "travel": ["hotels.search", "get_flight_status", "currency.convert"],
    "calendar": ["calendar.create_event", "todo_add", "set_reminder"],
    "smart home": ["home.set_thermostat", "setLight", "lock_door"],
    "library": ["library.search_catalog", "renew_loan", "placeHold"],
    "sports": ["get_match_score", "sports.league_standings", "player_stats"],
    "pharmacy": ["refill_prescription", "check_drug_interaction", "find_pharmacy"],
    "transit": ["transit.next_departures", "plan_trip"],
    "language": ["translate_text"],
}
assert sorted(sum(DOMAINS.values(), [])) == sorted(TOOLS)
