"""Requests that bring their own tools (heldout-open-world.jsonl).

single: one tool offered and needed; multiple: 2-6 tools of a domain (near misses), one right;
irrelevance: 1-4 tools, none serves the request (expected []); parallel: two calls in one reply, any order.
A list value is the list of allowed values; array-valued arguments are written [[...], ...].
"""

from __future__ import annotations

from itertools import permutations

from openworld_tools import DOMAINS, TOOLS  # noqa: F401  (TOOLS is read by make_heldout)


def perms(*xs):
    return [list(p) for p in permutations(xs)]


def single(prompt, tool, args):
    return {"kind": "single", "prompt": prompt, "tools": [tool], "calls": [(tool, args)]}


def multiple(prompt, tools, tool, args):
    assert tool in tools and 2 <= len(tools) <= 6
    return {"kind": "multiple", "prompt": prompt, "tools": tools, "calls": [(tool, args)]}


def irrelevant(prompt, tools):
    assert 1 <= len(tools) <= 4
    return {"kind": "irrelevance", "prompt": prompt, "tools": tools, "calls": []}


def parallel(prompt, tools, first, second):
    assert 1 <= len(tools) <= 3
    return {"kind": "parallel", "prompt": prompt, "tools": tools, "calls": [first, second]}


def dt(date, hm):
    """Allowed spellings of a local date-time."""
    return [f"{date}T{hm}", f"{date}T{hm}:00", f"{date} {hm}", f"{date} {hm}:00"]


W, BK, RC, FT = DOMAINS["weather"], DOMAINS["banking"], DOMAINS["recipes"], DOMAINS["fitness"]
SH, AS, MU, RE = DOMAINS["shipping"], DOMAINS["astronomy"], DOMAINS["music"], DOMAINS["real estate"]
HR, CH, GA, PK = DOMAINS["HR"], DOMAINS["chemistry"], DOMAINS["gardening"], DOMAINS["parking"]
PE, TR, CA, HM = DOMAINS["pets"], DOMAINS["travel"], DOMAINS["calendar"], DOMAINS["smart home"]
LB, SP, PH, TT = DOMAINS["library"], DOMAINS["sports"], DOMAINS["pharmacy"], DOMAINS["transit"]

SINGLE = [
    # weather
    single("Is it cold in Oslo right now? Give it to me in fahrenheit, I'm American lol", "get_current_weather",
           {"location": ["Oslo", "Oslo, Norway"], "units": "fahrenheit"}),
    single("What's the forecast for Lisbon over the next five days?", "weather.forecast",
           {"city": ["Lisbon", "Lisbon, Portugal"], "days": 5}),
    single("how bad is the PM2.5 in Delhi today", "getAirQuality", {"city": ["Delhi", "New Delhi"], "pollutant": "pm25"}),
    # banking
    single("Could you check how much is left in my checking account? The account ID is CHK-20931.", "bank.get_balance",
           {"account_id": "CHK-20931"}),
    single("Move two hundred and fifty dollars from SAV-1180 to CHK-20931, memo 'rent top-up'.", "bank.transfer_funds",
           {"from_account": "SAV-1180", "to_account": "CHK-20931", "amount": 250, "memo": "rent top-up"}),
    single("I think someone stole my wallet!! Please freeze the card ending in 7702.", "bank.freeze_card",
           {"card_last4": "7702", "reason": "stolen"}),
    single("Which accounts do I actually have with you? I forgot the ids.", "bank.list_accounts", {}),
    # recipes
    single("I've got chicken, spinach and garlic in the fridge. Anything I could cook in under 30 minutes?", "search_recipes",
           {"ingredients": perms("chicken", "spinach", "garlic"), "max_minutes": 30}),
    single("How many grams is 2.5 cups of flour?", "convertCookingUnits",
           {"quantity": 2.5, "from_unit": "cup", "to_unit": "gram", "ingredient": ["flour", "all-purpose flour"]}),
    single("Recipe R-5521 serves 4 but I'm hosting twelve people on Saturday. Can you scale it up?", "scale_recipe",
           {"recipe_id": "R-5521", "servings": 12}),
    # fitness
    single("Log a run for me: 42 minutes, 7.3 km, this morning (2025-04-14).", "log_workout",
           {"activity": "running", "duration_minutes": 42, "distance_km": 7.3, "date": "2025-04-14"}),
    single("I'm 1.78 m tall and weigh 82 kilos. What's my BMI?", "calculateBMI", {"weight_kg": 82, "height_cm": 178}),
    single("set my step goal to ten thousand a day", "set_daily_goal", {"metric": "steps", "target": 10000}),
    # shipping
    single("where's my package?? tracking number 1Z999AA10123456784, it's with UPS", "track_package",
           {"tracking_number": "1Z999AA10123456784", "carrier": "ups"}),
    single("How much would it cost to ship a 3.2 kg box from 94107 to 10001 by express?", "shipping.get_quote",
           {"origin_zip": "94107", "destination_zip": "10001", "weight_kg": 3.2, "express": True}),
    single("Make a shipping label from Priya Nair (ZIP 78701) to Marcus Chen (ZIP 98101). The box weighs 4 pounds.",
           "createShipmentLabel",
           {"sender": [{"name": "Priya Nair", "zip": "78701"}], "recipient": [{"name": "Marcus Chen", "zip": "98101"}], "weight_lb": 4}),
    # astronomy
    single("What phase will the moon be in on 2025-08-09?", "get_moon_phase", {"date": "2025-08-09"}),
    single("When does the sun come up in Reykjavik on June 21st, 2025?", "sunrise_sunset",
           {"city": ["Reykjavik", "Reykjavík", "Reykjavik, Iceland"], "date": "2025-06-21"}),
    single("Where will Jupiter be in the sky on New Year's Eve 2025, seen from Madrid?", "getPlanetPosition",
           {"planet": "jupiter", "date": "2025-12-31", "observer_city": ["Madrid", "Madrid, Spain"]}),
    # music
    single("Search for the song 'Feeling Good' by Nina Simone - top 5 results is plenty.", "music.search_tracks",
           {"query": ["Feeling Good", "Feeling Good Nina Simone"], "artist": ["Nina Simone", ""], "limit": 5}),
    single("Create a public playlist called Sunday Chill with tracks t_881, t_902 and t_1130.", "create_playlist",
           {"name": "Sunday Chill", "track_ids": [["t_881", "t_902", "t_1130"]], "public": True}),
    single("turn the volume down to 30 percent", "player.set_volume", {"level": 30}),
    single("Pause the music, the phone's ringing!", "player.pause", {}),
    # real estate
    single("Looking for a house in Denver, at least 3 bedrooms, budget tops out at 650k.", "search_listings",
           {"city": ["Denver", "Denver, CO"], "max_price": 650000, "min_bedrooms": 3, "property_type": "house"}),
    single("What would the monthly payment be on a $400,000 loan at 6.5% over 30 years?", "estimate_mortgage",
           {"principal": 400000, "annual_rate_percent": 6.5, "years": ["", 30]}),
    single("Book me a viewing for listing LX-7781 on May 3rd 2025 at 2 pm.", "schedule_viewing",
           {"listing_id": "LX-7781", "datetime": dt("2025-05-03", "14:00")}),
    # HR
    single("I'd like to take vacation from July 7 to July 11, 2025. My employee ID is E-4410.", "hr.request_time_off",
           {"employee_id": "E-4410", "start_date": "2025-07-07", "end_date": "2025-07-11", "type": "vacation"}),
    single("How many PTO days do I have left? I'm employee E-4410.", "hr.get_pto_balance", {"employee_id": "E-4410"}),
    single("Submit an expense: €84.20 for the team lunch with the client, category meals. I do have the receipt.", "submit_expense",
           {"amount": 84.2, "currency": "EUR", "category": "meals", "receipt_attached": True,
            "description": ["team lunch with the client", "team lunch with client", "client team lunch", "team lunch",
                            "lunch with the client"]}),
    # chemistry
    single("What's the molar mass of caffeine (C8H10N4O2)?", "get_molar_mass", {"formula": "C8H10N4O2"}),
    single("Balance this for me: Fe + O2 -> Fe2O3", "chem.balance_equation",
           {"equation": ["Fe + O2 -> Fe2O3", "Fe + O2 → Fe2O3", "Fe+O2->Fe2O3", "Fe + O2 = Fe2O3"]}),
    single("tell me about element number 79", "lookup_element", {"identifier": ["79", "Au", "gold"]}),
    single("Convert 250 millimolar NaCl into molar, please.", "chem.convert_concentration",
           {"value": 250, "from_unit": "millimolar", "to_unit": "molar", "solute_formula": ["NaCl", ""]}),
    # gardening
    single("How do I look after a fiddle leaf fig? Mine keeps dropping leaves and I'm getting worried.", "plant_care_info",
           {"plant_name": ["fiddle leaf fig", "fiddle-leaf fig", "Ficus lyrata"]}),
    single("When's the last frost usually around zip code 55401?", "frost_date_lookup", {"zip_code": "55401", "which": ["last", ""]}),
    single("What grows well next to tomatoes?", "companionPlants", {"crop": ["tomatoes", "tomato"]}),
    # parking
    single("I need covered parking near the Fox Theatre, nothing over $4 an hour.", "find_parking",
           {"near": ["Fox Theatre", "the Fox Theatre"], "max_price_per_hour": 4, "covered": True}),
    single("Pay for 90 minutes in zone 3317 for plate 8KJX204.", "parking.pay_meter",
           {"zone_id": "3317", "license_plate": "8KJX204", "minutes": 90}),
    single("Add another half hour to parking session PS-55120.", "parking.extend_session",
           {"session_id": "PS-55120", "extra_minutes": 30}),
    # pets
    single("My dog just ate a chocolate bar, I need an emergency vet near 60614 NOW", "pets.find_vet",
           {"zip_code": "60614", "emergency": True}),
    single("Log that Biscuit had 85 grams of kibble this evening.", "log_pet_feeding",
           {"pet_name": "Biscuit", "food": "kibble", "grams": 85}),
    single("What are Maine Coon cats like as pets?", "get_breed_info", {"breed": "Maine Coon", "species": "cat"}),
    # travel
    single("Is flight BA 283 on time today? (today is 2025-03-18)", "get_flight_status",
           {"flight_number": ["BA283", "BA 283"], "date": "2025-03-18"}),
    single("How much is 1,500 yen in euros?", "currency.convert", {"amount": 1500, "from_currency": "JPY", "to_currency": "EUR"}),
    single("Find a hotel in Kyoto for 2 guests, checking in October 3rd and out October 6th 2025, under 200 a night.", "hotels.search",
           {"city": ["Kyoto", "Kyoto, Japan"], "check_in": "2025-10-03", "check_out": "2025-10-06", "guests": 2, "max_price": 200}),
    # calendar
    single("Put 'Quarterly review' on my calendar for 2025-06-02 at 09:30, an hour and a half long, and invite ana@corp.example and li@corp.example.",
           "calendar.create_event",
           {"title": "Quarterly review", "start": dt("2025-06-02", "09:30"), "duration_minutes": 90,
            "attendees": perms("ana@corp.example", "li@corp.example")}),
    single("add 'renew passport' to my to-do list, high priority, due by the end of September 2025", "todo_add",
           {"task": ["renew passport"], "due_date": "2025-09-30", "priority": "high"}),
    single("Remind me to call the plumber at 5pm on 11 February 2025.", "set_reminder",
           {"message": ["call the plumber", "call plumber"], "time": dt("2025-02-11", "17:00")}),
    # smart home
    single("Set the bedroom to 19 degrees Celsius.", "home.set_thermostat", {"temperature": 19, "unit": ["C", ""], "room": "bedroom"}),
    single("dim the kitchen lights to 40%", "setLight", {"room": "kitchen", "on": True, "brightness": 40}),
    single("Did I lock the back door? Ugh, just lock it to be sure.", "lock_door", {"door": "back"}),
    # library
    single("Does the library have 'The Left Hand of Darkness' as an audiobook?", "library.search_catalog",
           {"query": ["The Left Hand of Darkness", "Left Hand of Darkness"], "format": "audiobook"}),
    single("Please renew my loan L-339201, I'm not done with the book yet.", "renew_loan", {"loan_id": "L-339201"}),
    single("Put a hold on ISBN 978-0-14-303943-3 for pickup at the Eastside branch.", "placeHold",
           {"isbn": ["978-0-14-303943-3", "9780143039433"], "branch": ["Eastside", "Eastside branch"]}),
    # sports
    single("What was the score of the Arsenal game on 2025-01-18?", "get_match_score", {"team": "Arsenal", "date": "2025-01-18"}),
    single("Show me the NBA standings for the 2023-24 season.", "sports.league_standings",
           {"league": "NBA", "season": ["2023-24", "2023-2024"]}),
    # pharmacy
    single("Refill prescription RX-884213 at pharmacy 0457 please.", "refill_prescription",
           {"rx_number": "RX-884213", "pharmacy_id": "0457"}),
    single("Is it safe to take ibuprofen together with lisinopril?", "check_drug_interaction",
           {"drugs": perms("ibuprofen", "lisinopril")}),
    # transit + language
    single("When are the next 3 buses on route 14 from stop 5521?", "transit.next_departures",
           {"stop_id": "5521", "route": "14", "limit": 3}),
    single("Translate 'Where is the nearest train station?' into German.", "translate_text",
           {"text": ["Where is the nearest train station?"], "target_language": ["German", "de"],
            "source_language": ["", "English", "en"]}),
]

MULTIPLE = [
    # weather
    multiple("Will I need an umbrella in Manchester this weekend? Check the next 3 days.", W, "weather.forecast",
             {"city": ["Manchester", "Manchester, UK"], "days": 3}),
    multiple("What's the UV index at latitude 33.9, longitude -118.4?", W, "get_uv_index", {"lat": 33.9, "lon": -118.4}),
    multiple("What's the temperature in Nairobi at the moment, in celsius?", ["get_current_weather", "weather.forecast"],
             "get_current_weather", {"location": ["Nairobi", "Nairobi, Kenya"], "units": ["celsius", ""]}),
    multiple("I have asthma. Is the ozone level in Phoenix bad right now?", ["getAirQuality", "get_current_weather", "weather.forecast"],
             "getAirQuality", {"city": ["Phoenix", "Phoenix, AZ"], "pollutant": "o3"}),
    # banking
    multiple("Show me every transaction on CHK-20931 between March 1 and March 31, 2025 that was over $100.", BK,
             "bank.list_transactions", {"account_id": "CHK-20931", "start_date": "2025-03-01", "end_date": "2025-03-31", "min_amount": 100}),
    multiple("Send 40 bucks from CHK-20931 to SAV-1180.", BK, "bank.transfer_funds",
             {"from_account": "CHK-20931", "to_account": "SAV-1180", "amount": 40}),
    multiple("What's the balance on SAV-1180, converted to euros?", ["bank.get_balance", "bank.list_transactions", "bank.list_accounts"],
             "bank.get_balance", {"account_id": "SAV-1180", "currency": "EUR"}),
    multiple("There are charges on my card ending 3391 that I don't recognise. Lock it down please.", ["bank.freeze_card", "bank.get_balance"],
             "bank.freeze_card", {"card_last4": "3391", "reason": "suspicious_activity"}),
    # recipes
    multiple("How many calories would two servings of shakshuka be?", RC, "recipes.get_nutrition",
             {"recipe_name": "shakshuka", "servings": 2}),
    multiple("Find me a vegan dinner that uses lentils and sweet potato.", RC, "search_recipes",
             {"ingredients": perms("lentils", "sweet potato") + perms("lentils", "sweet potatoes"), "diet": "vegan"}),
    multiple("convert 3 tablespoons to teaspoons", ["convertCookingUnits", "scale_recipe"], "convertCookingUnits",
             {"quantity": 3, "from_unit": "tablespoon", "to_unit": "teaspoon"}),
    multiple("Halve recipe R-1020 - it serves 4 and it's just me and my partner.", ["scale_recipe", "search_recipes", "recipes.get_nutrition"],
             "scale_recipe", {"recipe_id": "R-1020", "servings": 2}),
    # fitness
    multiple("How many steps did I walk on April 2nd, 2025?", FT, "fitness.get_step_count", {"date": "2025-04-02"}),
    multiple("just did 45 mins of yoga, record it", ["log_workout", "set_daily_goal"], "log_workout",
             {"activity": "yoga", "duration_minutes": 45}),
    multiple("I want to burn 600 calories every day. Set that as my target.", ["set_daily_goal", "log_workout", "fitness.get_step_count"],
             "set_daily_goal", {"metric": "calories", "target": 600}),
    multiple("Swam one and a half kilometres in 35 minutes yesterday, 2025-04-13. Log it please.", FT, "log_workout",
             {"activity": "swimming", "duration_minutes": 35, "distance_km": 1.5, "date": "2025-04-13"}),
    # shipping
    multiple("Can a courier pick up my parcel from 88 Harbor Rd on July 22, 2025, sometime in the afternoon?", SH, "schedule_pickup",
             {"address": ["88 Harbor Rd", "88 Harbor Road"], "date": "2025-07-22", "window": "afternoon"}),
    multiple("Track DHL shipment 4829105737 for me.", ["track_package", "shipping.get_quote"], "track_package",
             {"tracking_number": "4829105737", "carrier": "dhl"}),
    multiple("Quote for standard shipping of a 12 kg parcel from zip 60601 to 73301?", ["shipping.get_quote", "createShipmentLabel", "track_package"],
             "shipping.get_quote", {"origin_zip": "60601", "destination_zip": "73301", "weight_kg": 12, "express": ["", False]}),
    # astronomy
    multiple("When can I next see the ISS from 40.7 N, 74.0 W?", AS, "astro.next_visible_pass",
             {"satellite": ["ISS", "International Space Station"], "latitude": 40.7, "longitude": -74.0}),
    multiple("What time is sunset in Cape Town on Christmas Day 2025?", AS, "sunrise_sunset",
             {"city": ["Cape Town", "Cape Town, South Africa"], "date": "2025-12-25"}),
    multiple("Will there be a full moon on Halloween this year? It's 2025.", ["get_moon_phase", "getPlanetPosition"], "get_moon_phase",
             {"date": "2025-10-31"}),
    # music
    multiple("What are the lyrics to 'Yesterday' by the Beatles?", MU, "getLyrics",
             {"song_title": "Yesterday", "artist": ["The Beatles", "Beatles"]}),
    multiple("Crank it up to max volume!!", MU, "player.set_volume", {"level": 100}),
    multiple("Make a private playlist named 'Gym' with t_10 and t_22.", ["create_playlist", "music.search_tracks"], "create_playlist",
             {"name": "Gym", "track_ids": [["t_10", "t_22"]], "public": ["", False]}),
    multiple("Search for 'Clair de Lune', I only want 3 results.", ["music.search_tracks", "getLyrics", "player.pause"], "music.search_tracks",
             {"query": "Clair de Lune", "limit": 3}),
    # real estate
    multiple("Tell me more about listing LX-2290: square footage, year built, that kind of thing.", RE, "realestate.get_property_details",
             {"listing_id": "LX-2290"}),
    multiple("Any condos in Miami under $500k? I need two bedrooms minimum.", RE, "search_listings",
             {"city": ["Miami", "Miami, FL"], "max_price": 500000, "min_bedrooms": 2, "property_type": "condo"}),
    multiple("Monthly cost of borrowing 250k at 5.75 percent for 15 years?", ["estimate_mortgage", "search_listings"], "estimate_mortgage",
             {"principal": 250000, "annual_rate_percent": 5.75, "years": 15}),
    # HR
    multiple("Who works in the legal department? I need to find someone there.", HR, "getEmployeeDirectory", {"department": ["legal", "legal department"]}),
    multiple("I'm sick today, 2025-02-03. Please log a sick day for E-2087.", HR, "hr.request_time_off",
             {"employee_id": "E-2087", "start_date": "2025-02-03", "end_date": "2025-02-03", "type": "sick"}),
    multiple("Expense a $32 taxi ride to the airport, category travel. No receipt, sorry.", ["submit_expense", "hr.request_time_off"],
             "submit_expense", {"amount": 32, "currency": ["", "USD"], "category": "travel", "receipt_attached": ["", False],
                                "description": ["taxi ride to the airport", "taxi to the airport", "taxi to airport", "taxi ride to airport",
                                                "taxi ride"]}),
    multiple("What's Jordan Okafor's phone extension? Look him up.", ["getEmployeeDirectory", "hr.get_pto_balance"], "getEmployeeDirectory",
             {"name": "Jordan Okafor"}),
    # chemistry
    multiple("What's the melting point of tungsten?", CH, "lookup_element", {"identifier": ["tungsten", "W"]}),
    multiple("molar mass of sulfuric acid?", CH, "get_molar_mass", {"formula": "H2SO4"}),
    multiple("Balance C3H8 + O2 -> CO2 + H2O", ["chem.balance_equation", "get_molar_mass"], "chem.balance_equation",
             {"equation": ["C3H8 + O2 -> CO2 + H2O", "C3H8 + O2 → CO2 + H2O", "C3H8+O2->CO2+H2O", "C3H8 + O2 = CO2 + H2O"]}),
    multiple("Express a 5% glucose solution in ppm.", ["chem.convert_concentration", "get_molar_mass"], "chem.convert_concentration",
             {"value": 5, "from_unit": "percent", "to_unit": "ppm", "solute_formula": ["", "C6H12O6"]}),
    # gardening
    multiple("How often should I water basil in a pot? I'm in zone 7.", GA, "garden.watering_schedule",
             {"plant": "basil", "climate_zone": 7, "in_pot": True}),
    multiple("What's the first frost date for 97201?", GA, "frost_date_lookup", {"zip_code": "97201", "which": "first"}),
    multiple("good companions for carrots?", ["companionPlants", "plant_care_info"], "companionPlants", {"crop": ["carrots", "carrot"]}),
    # parking
    multiple("I need 15 more minutes on session PS-90014.", PK, "parking.extend_session", {"session_id": "PS-90014", "extra_minutes": 15}),
    multiple("Find somewhere to park near 500 Market Street.", PK, "find_parking", {"near": ["500 Market Street", "500 Market St"]}),
    multiple("Pay two hours in zone 12 for my car, plate 7ABC123.", ["parking.pay_meter", "parking.extend_session"], "parking.pay_meter",
             {"zone_id": "12", "license_plate": "7ABC123", "minutes": 120}),
    # pets
    multiple("Book Luna in for a nail trim on May 17, 2025.", PE, "book_grooming", {"pet_name": "Luna", "service": "nail_trim", "date": "2025-05-17"}),
    multiple("Do beagles shed a lot?", PE, "get_breed_info", {"breed": ["beagle", "Beagle"], "species": "dog"}),
    multiple("Find a regular vet near 02139 - nothing urgent, just a checkup.", ["pets.find_vet", "book_grooming"], "pets.find_vet",
             {"zip_code": "02139", "emergency": ["", False]}),
    # travel
    multiple("Convert 75 Swiss francs to US dollars.", TR, "currency.convert", {"amount": 75, "from_currency": "CHF", "to_currency": "USD"}),
    multiple("Has UA 901 left yet? It was scheduled for 2025-06-30.", TR, "get_flight_status",
             {"flight_number": ["UA901", "UA 901"], "date": "2025-06-30"}),
    # calendar
    multiple("Remind me at 8am on 1 March 2025 to take out the recycling.", CA, "set_reminder",
             {"message": ["take out the recycling", "take the recycling out"], "time": dt("2025-03-01", "08:00")}),
    multiple("Add a to-do: book the car service. Low priority.", CA, "todo_add",
             {"task": ["book the car service", "book car service"], "priority": "low"}),
    multiple("Schedule 'Dentist' on 2025-04-08 at 15:00 for 45 minutes.", CA, "calendar.create_event",
             {"title": "Dentist", "start": dt("2025-04-08", "15:00"), "duration_minutes": 45}),
    # smart home
    multiple("It's freezing in here, bump the living room heat to 72 F", HM, "home.set_thermostat",
             {"temperature": 72, "unit": "F", "room": ["living room"]}),
    multiple("Turn off the lights in the garage.", HM, "setLight", {"room": "garage", "on": False}),
    multiple("lock the patio door pls", ["lock_door", "setLight"], "lock_door", {"door": "patio"}),
    # library
    multiple("Is there an ebook of 'Dune' by Frank Herbert?", LB, "library.search_catalog",
             {"query": ["Dune", "Dune Frank Herbert", "Dune by Frank Herbert", "Frank Herbert Dune"], "format": "ebook"}),
    # sports
    multiple("How many goals did Erling Haaland score in the 2022-23 season?", SP, "player_stats",
             {"player_name": "Erling Haaland", "season": ["2022-23", "2022-2023"]}),
    multiple("Who's top of the Premier League in 2024-25?", SP, "sports.league_standings",
             {"league": ["Premier League", "English Premier League", "EPL"], "season": ["2024-25", "2024-2025"]}),
    # pharmacy
    multiple("Can I combine warfarin, aspirin and omeprazole?", PH, "check_drug_interaction",
             {"drugs": perms("warfarin", "aspirin", "omeprazole")}),
    # transit
    multiple("What's the best way from Central Park to the Brooklyn Museum by subway, leaving 2025-08-15 at 6 pm?", TT, "plan_trip",
             {"origin": "Central Park", "destination": ["Brooklyn Museum", "the Brooklyn Museum"], "depart_at": dt("2025-08-15", "18:00"),
              "mode": "subway"}),
    # mixed domains
    multiple("How do you say 'good luck with your exam' in Italian? Use the translator.", ["translate_text", "currency.convert", "get_current_weather"],
             "translate_text", {"text": ["good luck with your exam"], "target_language": ["Italian", "it"], "source_language": ["", "English", "en"]}),
]

IRRELEVANT = [
    irrelevant("What was the hottest temperature ever recorded in Death Valley?", ["get_current_weather"]),
    irrelevant("What's the pollen count in Berlin today? My hay fever is killing me.", ["getAirQuality"]),
    irrelevant("What's the current interest rate on a 30-year mortgage in the US?", ["bank.get_balance", "bank.transfer_funds"]),
    irrelevant("How much is one Bitcoin worth today?", ["bank.list_transactions", "bank.get_balance"]),
    irrelevant("How many calories are in a banana?", ["search_recipes", "scale_recipe"]),
    irrelevant("What should my resting heart rate be at age 40?", ["calculateBMI"]),
    irrelevant("How many steps did I take yesterday?", ["log_workout", "set_daily_goal"]),
    irrelevant("How much does a stamp for a letter to Canada cost?", ["track_package"]),
    irrelevant("Where is my package 1Z999AA10123456784 right now?", ["shipping.get_quote", "schedule_pickup"]),
    irrelevant("How far away is the Moon from Earth?", ["get_moon_phase"]),
    irrelevant("When is the next total solar eclipse visible from Europe?", ["sunrise_sunset", "get_moon_phase"]),
    irrelevant("Who won the Grammy for Album of the Year in 2020?", ["getLyrics", "music.search_tracks"]),
    irrelevant("Play 'Bohemian Rhapsody' please.", ["player.set_volume", "create_playlist"]),
    irrelevant("What's the average house price in Austin these days?", ["estimate_mortgage"]),
    irrelevant("How much is my house at 14 Birch Street worth?", ["search_listings", "schedule_viewing"]),
    irrelevant("What are the company holidays in December?", ["hr.get_pto_balance"]),
    irrelevant("What will my salary be after the raise?", ["submit_expense", "hr.request_time_off", "getEmployeeDirectory"]),
    irrelevant("What's the boiling point of ethanol?", ["get_molar_mass"]),
    irrelevant("Is hydrochloric acid dangerous to touch?", ["chem.balance_equation"]),
    irrelevant("When is the last frost date in Chicago usually?", ["plant_care_info", "companionPlants"]),
    irrelevant("What's the pH of my garden soil?", ["garden.watering_schedule"]),
    irrelevant("How much is the parking ticket I got yesterday?", ["find_parking"]),
    irrelevant("Is street parking free on Sundays in Boston?", ["parking.pay_meter", "parking.extend_session"]),
    irrelevant("How long do goldfish usually live?", ["log_pet_feeding", "get_breed_info"]),
    irrelevant("What vaccines does a new kitten need?", ["pets.find_vet"]),
    irrelevant("Book me a table at an Italian restaurant tonight, for two.", ["hotels.search"]),
    irrelevant("What is the population of Canada?", ["currency.convert"]),
    irrelevant("Roughly how long is a flight from London to New York?", ["get_flight_status"]),
    irrelevant("What day of the week was July 4, 1976?", ["calendar.create_event"]),
    irrelevant("What's on my calendar tomorrow?", ["set_reminder", "todo_add"]),
    irrelevant("What temperature is it inside the house right now?", ["home.set_thermostat"]),
    irrelevant("Is the front door locked at the moment? Don't change anything, I just want to know.", ["lock_door", "setLight"]),
    irrelevant("What time does the library close today?", ["library.search_catalog"]),
    irrelevant("How much do I owe in late fees?", ["renew_loan", "placeHold"]),
    irrelevant("How many World Cups has Brazil won?", ["get_match_score"]),
    irrelevant("When is the next Lakers game?", ["player_stats", "sports.league_standings"]),
    irrelevant("What's the maximum daily dose of acetaminophen for an adult?", ["refill_prescription"]),
    irrelevant("What are the common side effects of metformin?", ["find_pharmacy", "check_drug_interaction"]),
    irrelevant("How much is a monthly transit pass?", ["transit.next_departures"]),
    irrelevant("Which city has the longest subway system in the world?", ["plan_trip"]),
    irrelevant("What languages are spoken in Switzerland?", ["translate_text"]),
    irrelevant("What SPF sunscreen should I be using?", ["get_uv_index"]),
    irrelevant("I want to open a new savings account.", ["bank.freeze_card", "bank.list_accounts"]),
    irrelevant("What internal temperature should a roast turkey reach?", ["search_recipes", "convertCookingUnits"]),
    irrelevant("What is Avogadro's number?", ["lookup_element", "get_molar_mass"]),
    irrelevant("How many moons does Mars have?", ["astro.next_visible_pass", "getPlanetPosition"]),
    irrelevant("How many hurricanes hit Florida last year?", ["weather.forecast", "get_current_weather"]),
    irrelevant("Write me a short song about my dog, he's called Pickles.", ["music.search_tracks"]),
    irrelevant("hey, thanks for your help today!", ["getEmployeeDirectory"]),
    irrelevant("Hi! Just wanted to say the package arrived safe and sound :)", ["shipping.get_quote", "track_package", "schedule_pickup"]),
]

PARALLEL = [
    parallel("What's the weather in Paris and in Rome right now?", ["get_current_weather"],
             ("get_current_weather", {"location": ["Paris", "Paris, France"]}),
             ("get_current_weather", {"location": ["Rome", "Rome, Italy"]})),
    parallel("Convert 100 USD to EUR, and also 100 USD to GBP.", ["currency.convert"],
             ("currency.convert", {"amount": 100, "from_currency": "USD", "to_currency": "EUR"}),
             ("currency.convert", {"amount": 100, "from_currency": "USD", "to_currency": "GBP"})),
    parallel("Track two packages for me: 9400111899223344556677 (USPS) and 781234567890 (FedEx).", ["track_package"],
             ("track_package", {"tracking_number": "9400111899223344556677", "carrier": "usps"}),
             ("track_package", {"tracking_number": "781234567890", "carrier": "fedex"})),
    parallel("Give me the molar masses of NaCl and KCl.", ["get_molar_mass", "lookup_element"],
             ("get_molar_mass", {"formula": "NaCl"}), ("get_molar_mass", {"formula": "KCl"})),
    parallel("Lock the front door and turn off the bedroom lights, I'm going to sleep.", ["lock_door", "setLight", "home.set_thermostat"],
             ("lock_door", {"door": "front"}), ("setLight", {"room": "bedroom", "on": False})),
    parallel("What are the balances on CHK-20931 and SAV-1180?", ["bank.get_balance", "bank.list_accounts"],
             ("bank.get_balance", {"account_id": "CHK-20931"}), ("bank.get_balance", {"account_id": "SAV-1180"})),
    parallel("I'm torn between a husky and a corgi. Pull up the breed info on both?", ["get_breed_info"],
             ("get_breed_info", {"breed": ["husky", "Siberian Husky"], "species": "dog"}),
             ("get_breed_info", {"breed": ["corgi", "Pembroke Welsh Corgi", "Welsh Corgi"], "species": "dog"})),
    parallel("For 2025-09-07 in Sydney: when's sunset, and what phase is the moon in that day?", ["sunrise_sunset", "get_moon_phase"],
             ("sunrise_sunset", {"city": ["Sydney", "Sydney, Australia"], "date": "2025-09-07"}), ("get_moon_phase", {"date": "2025-09-07"})),
    parallel("Check both LH 400 and AF 11 for today, 2025-05-05.", ["get_flight_status"],
             ("get_flight_status", {"flight_number": ["LH400", "LH 400"], "date": "2025-05-05"}),
             ("get_flight_status", {"flight_number": ["AF11", "AF 11", "AF011"], "date": "2025-05-05"})),
    parallel("Translate 'thank you very much' into Japanese and into Korean.", ["translate_text"],
             ("translate_text", {"text": "thank you very much", "target_language": ["Japanese", "ja"], "source_language": ["", "English", "en"]}),
             ("translate_text", {"text": "thank you very much", "target_language": ["Korean", "ko"], "source_language": ["", "English", "en"]})),
    parallel("Check the PTO balances for E-4410 and E-2087.", ["hr.get_pto_balance", "hr.request_time_off"],
             ("hr.get_pto_balance", {"employee_id": "E-4410"}), ("hr.get_pto_balance", {"employee_id": "E-2087"})),
    parallel("Add 'buy birthday card' to my to-do list, and remind me on 2025-03-14 at 9:00 to call grandma.", ["set_reminder", "todo_add"],
             ("todo_add", {"task": ["buy birthday card", "buy a birthday card"]}),
             ("set_reminder", {"message": ["call grandma"], "time": dt("2025-03-14", "09:00")})),
    parallel("Log 60 grams of wet food for Mochi and 90 grams of kibble for Rex.", ["log_pet_feeding"],
             ("log_pet_feeding", {"pet_name": "Mochi", "food": "wet food", "grams": 60}),
             ("log_pet_feeding", {"pet_name": "Rex", "food": "kibble", "grams": 90})),
    parallel("Search apartments in Boston under 700000 with 2+ bedrooms, and separately estimate the payment on 560k at 6% for 30 years.",
             ["search_listings", "estimate_mortgage"],
             ("search_listings", {"city": ["Boston", "Boston, MA"], "max_price": 700000, "min_bedrooms": 2, "property_type": "apartment"}),
             ("estimate_mortgage", {"principal": 560000, "annual_rate_percent": 6, "years": ["", 30]})),
    parallel("Set the volume to 25 and make a playlist called 'Focus' with t_5 and t_9.", ["player.set_volume", "create_playlist"],
             ("player.set_volume", {"level": 25}), ("create_playlist", {"name": "Focus", "track_ids": [["t_5", "t_9"]]})),
    parallel("What are good companion plants for cucumbers? And for peppers?", ["companionPlants"],
             ("companionPlants", {"crop": ["cucumbers", "cucumber"]}), ("companionPlants", {"crop": ["peppers", "pepper"]})),
    parallel("Set the kids' room to 20°C and the office to 22°C.", ["home.set_thermostat"],
             ("home.set_thermostat", {"temperature": 20, "unit": ["C", ""], "room": ["kids' room", "kids room", "kid's room"]}),
             ("home.set_thermostat", {"temperature": 22, "unit": ["C", ""], "room": "office"})),
    parallel("What was Real Madrid's score on 2025-03-09? And show me the La Liga table for 2024-25.", ["get_match_score", "sports.league_standings"],
             ("get_match_score", {"team": "Real Madrid", "date": "2025-03-09"}),
             ("sports.league_standings", {"league": "La Liga", "season": ["2024-25", "2024-2025"]})),
    parallel("Check whether sertraline and tramadol interact, and find me a pharmacy near 94110 that's open now.",
             ["check_drug_interaction", "find_pharmacy"],
             ("check_drug_interaction", {"drugs": perms("sertraline", "tramadol")}), ("find_pharmacy", {"zip_code": "94110", "open_now": True})),
    parallel("How many steps did I do on the 1st and on the 2nd of April 2025?", ["fitness.get_step_count"],
             ("fitness.get_step_count", {"date": "2025-04-01"}), ("fitness.get_step_count", {"date": "2025-04-02"})),
    parallel("Quote me shipping 2 kg from 10001 to 94107: once standard and once express so I can compare.", ["shipping.get_quote"],
             ("shipping.get_quote", {"origin_zip": "10001", "destination_zip": "94107", "weight_kg": 2, "express": ["", False]}),
             ("shipping.get_quote", {"origin_zip": "10001", "destination_zip": "94107", "weight_kg": 2, "express": True})),
    parallel("Look up both neon and argon for me.", ["lookup_element"],
             ("lookup_element", {"identifier": ["neon", "Ne"]}), ("lookup_element", {"identifier": ["argon", "Ar"]})),
    parallel("Extend PS-1001 by 20 minutes and PS-1002 by three quarters of an hour.", ["parking.extend_session", "parking.pay_meter"],
             ("parking.extend_session", {"session_id": "PS-1001", "extra_minutes": 20}),
             ("parking.extend_session", {"session_id": "PS-1002", "extra_minutes": 45})),
    parallel("Give me the 7-day forecast for Beijing and the current PM10 level there.", ["weather.forecast", "getAirQuality"],
             ("weather.forecast", {"city": "Beijing", "days": 7}), ("getAirQuality", {"city": "Beijing", "pollutant": "pm10"})),
    parallel("Renew loan L-100233, and check if they have 'Circe' in print.", ["library.search_catalog", "renew_loan"],
             ("renew_loan", {"loan_id": "L-100233"}), ("library.search_catalog", {"query": "Circe", "format": "print"})),
    parallel("Create two events on July 1st 2025: 'Standup' at 09:00 for 15 minutes and 'Design review' at 14:00 for an hour.",
             ["calendar.create_event"],
             ("calendar.create_event", {"title": "Standup", "start": dt("2025-07-01", "09:00"), "duration_minutes": 15}),
             ("calendar.create_event", {"title": "Design review", "start": dt("2025-07-01", "14:00"), "duration_minutes": ["", 60]})),
    parallel("For Honolulu (21.3, -157.9): what's the UV index, and what's the weather doing right now?", ["get_uv_index", "get_current_weather"],
             ("get_uv_index", {"lat": 21.3, "lon": -157.9}), ("get_current_weather", {"location": ["Honolulu", "Honolulu, HI"]})),
    parallel("How do I care for a snake plant, and a pothos?", ["plant_care_info"],
             ("plant_care_info", {"plant_name": ["snake plant", "Sansevieria"]}), ("plant_care_info", {"plant_name": ["pothos", "Epipremnum aureum"]})),
    parallel("Next departures from stop 101 and from stop 202, please.", ["transit.next_departures"],
             ("transit.next_departures", {"stop_id": "101"}), ("transit.next_departures", {"stop_id": "202"})),
    parallel("Freeze card 4821, I lost it. Also pull the transactions on CHK-20931 from May 1 to May 10, 2025.",
             ["bank.freeze_card", "bank.list_transactions"],
             ("bank.freeze_card", {"card_last4": "4821", "reason": "lost"}),
             ("bank.list_transactions", {"account_id": "CHK-20931", "start_date": "2025-05-01", "end_date": "2025-05-10"})),
]


def items():
    assert (len(SINGLE), len(MULTIPLE), len(IRRELEVANT), len(PARALLEL)) == (60, 60, 50, 30), \
        (len(SINGLE), len(MULTIPLE), len(IRRELEVANT), len(PARALLEL))
    return SINGLE + MULTIPLE + IRRELEVANT + PARALLEL
