"""Phrasings of each intent: the data generator's vocabulary (GPT4Tools-style self-instruct data,
written here by hand instead of sampled from a teacher LLM; arXiv 2305.18752).

A template id is `<intent>/<index>`. The generator holds out a fixed subset of ids per intent for
the unseen-phrasings test split, so a template is either seen in training or only in that test.
Phrasings are multiplied by the shared `OPENERS`/`CLOSERS` below; the held-out unit is the core
phrasing, so a test item's wording around the verb may be familiar but its verb phrase never is.

Slots: `{img}` an image reference ("this photo", "image_2"), `{aud}` an audio reference, `{prompt}`
a generation prompt, `{n}` an integer, `{text}` a note to remember, `{query}` a memory query,
`{labels}` object names, `{w}`/`{h}` a size, `{box}` a box.
"""

from __future__ import annotations

OPENERS = ["", "Please ", "Hey, ", "Could you ", "Can you ", "I need you to ", "Quick one: ", "Would you ", "Go ahead and ", "Help me: "]
CLOSERS = ["", "", "", " please", " thanks", ", thank you", " for me", " quickly", " when you can", "!"]

# Phrasings that read as an imperative after an opener ("Could you " + "read the text in {img}").
PHRASINGS: dict[str, list[str]] = {
    "read_text": [
        "read the text in {img}", "tell me what {img} says", "transcribe the writing on {img}", "OCR {img}",
        "extract all the words from {img}", "what is written on {img}?", "read out {img}", "pull the text out of {img}",
        "get the words off {img}", "read the sign in {img}", "copy the text you can see in {img}",
        "tell me the lettering on {img}", "run text recognition on {img}", "what does the label in {img} read?",
        "read {img} aloud to me as text", "grab whatever is written in {img}", "decode the printed text in {img}",
        "find out what the note in {img} says", "list the lines of text in {img}", "read what's printed on {img}",
        "give me the text from {img}", "turn {img} into plain text", "what words appear in {img}?",
        "scan {img} for text",
    ],
    "detect_faces": [
        "find the faces in {img}", "how many faces are in {img}?", "detect faces in {img}", "locate every face in {img}",
        "are there any people's faces in {img}?", "count the faces in {img}", "where are the faces in {img}?",
        "run face detection on {img}", "spot the faces in {img}", "give me boxes around the faces in {img}",
        "check {img} for faces", "tell me how many people are looking out of {img}", "mark where each face is in {img}",
        "find every person's face in {img}", "is anyone's face visible in {img}?", "search {img} for human faces",
        "get the face locations in {img}", "how many heads can you find in {img}?", "detect the people's faces on {img}",
        "list the faces that show up in {img}", "which parts of {img} contain a face?", "look for faces in {img}",
    ],
    "detect_objects": [
        "detect the objects in {img}", "what objects are in {img}?", "find the things in {img} and their boxes",
        "run object detection on {img}", "locate the objects shown in {img}", "list every object in {img} with its position",
        "find all items in {img}", "what can you detect in {img}?", "draw up a list of objects in {img}",
        "where are the objects in {img}?", "identify and locate the objects in {img}", "scan {img} for objects",
        "detect what is in {img}", "give me bounding boxes for the objects in {img}", "spot the objects in {img}",
        "which objects appear in {img}, and where?", "find the shapes in {img}", "pick out the objects in {img}",
        "run the detector over {img}", "what things does {img} contain and where are they?",
    ],
    "detect_objects+labels": [
        "find the {labels} in {img}", "locate any {labels} in {img}", "detect {labels} in {img}",
        "are there {labels} in {img}? show me where", "look for {labels} in {img}", "where are the {labels} in {img}?",
        "give me boxes for the {labels} in {img}", "search {img} for {labels}", "spot every {labels} in {img}",
        "find only the {labels} in {img}", "count the {labels} in {img} and give boxes", "mark the {labels} in {img}",
    ],
    "classify_image": [
        "classify {img}", "what is in {img}?", "what does {img} show?", "identify what {img} is a picture of",
        "label {img}", "what kind of thing is in {img}?", "tell me what {img} depicts", "recognize the subject of {img}",
        "what am I looking at in {img}?", "name the main object in {img}", "give me a category for {img}",
        "what is this a photo of? ({img})", "categorize {img}", "which class does {img} belong to?",
        "what's the main thing in {img}?", "guess what {img} shows", "run the image classifier on {img}",
        "what animal or object is in {img}?", "describe in one word what {img} is", "tag {img} with a label",
        "tell me the top label for {img}", "what would you call the thing in {img}?",
    ],
    "classify_image+k": [
        "give me the top {n} labels for {img}", "classify {img} and show {n} guesses", "list the {n} most likely classes for {img}",
        "what are the top {n} predictions for {img}?", "rank {n} possible labels for {img}", "show {n} candidate categories for {img}",
        "classify {img}, top {n}", "give {n} best guesses of what {img} shows", "tell me {n} likely labels for {img}",
        "what {n} classes fit {img} best?", "predict the top-{n} classes of {img}", "name {n} things {img} might be",
    ],
    "generate_image": [
        "generate an image of {prompt}", "draw {prompt}", "make a picture of {prompt}", "create an image showing {prompt}",
        "paint {prompt}", "render {prompt}", "produce an image of {prompt}", "sketch {prompt}",
        "show me a generated picture of {prompt}", "imagine {prompt} and draw it", "design an image with {prompt}",
        "generate a picture: {prompt}", "I'd like an image of {prompt}", "make me art of {prompt}",
        "create a new image of {prompt}", "illustrate {prompt}", "come up with an image of {prompt}",
        "give me a drawing of {prompt}", "synthesize an image of {prompt}", "whip up a picture of {prompt}",
        "make an illustration of {prompt}", "generate {prompt}",
    ],
    "generate_image+seed": [
        "generate an image of {prompt} with seed {n}", "draw {prompt}, seed {n}", "make a picture of {prompt} using seed {n}",
        "create {prompt} (seed={n})", "render {prompt} with random seed {n}", "use seed {n} to generate {prompt}",
        "paint {prompt}; set the seed to {n}", "produce an image of {prompt}, seed {n} please",
        "with seed {n}, draw {prompt}", "illustrate {prompt} and fix the seed at {n}",
        "generate {prompt} — seed {n}", "make {prompt} reproducible with seed {n}",
    ],
    "generate_image+steps": [
        "generate an image of {prompt} with {n} steps", "draw {prompt} using {n} denoising steps", "render {prompt} in {n} steps",
        "make a picture of {prompt}, {n} inference steps", "create {prompt} with steps={n}", "use {n} steps to generate {prompt}",
        "paint {prompt} and run {n} sampling steps", "produce {prompt} at {n} steps",
        "illustrate {prompt} with {n} diffusion steps", "generate {prompt}, steps {n}",
    ],
    "crop_image": [
        "crop {img} to {box}", "cut out the region {box} from {img}", "crop the area {box} of {img}",
        "trim {img} down to the box {box}", "keep only {box} of {img}", "extract the part of {img} inside {box}",
        "crop {img} using the box {box}", "give me the {box} region of {img}", "zoom into {box} on {img}",
        "cut {img} to the rectangle {box}", "take a crop of {img} at {box}", "isolate {box} in {img}",
        "snip {box} out of {img}", "make a cropped copy of {img} covering {box}",
    ],
    "resize_image": [
        "resize {img} to {w}x{h}", "make {img} {w} by {h} pixels", "scale {img} to {w}x{h}", "change the size of {img} to {w}x{h}",
        "shrink {img} to {w} by {h}", "set {img} to width {w} and height {h}", "rescale {img} to {w}x{h} pixels",
        "convert {img} to a {w}x{h} image", "give me {img} at {w}x{h}", "resize {img}: width {w}, height {h}",
        "make a {w}x{h} version of {img}", "adjust {img} to be {w} wide and {h} tall", "downsize {img} to {w}x{h}",
        "turn {img} into {w} by {h}",
    ],
    "draw_boxes": [
        "draw the box {box} on {img}", "outline {box} in {img}", "mark the region {box} on {img}", "draw a rectangle at {box} on {img}",
        "highlight {box} in {img}", "put a bounding box at {box} on {img}", "annotate {img} with the box {box}",
        "show {box} as a box on {img}", "overlay the box {box} on {img}", "frame the area {box} in {img}",
        "draw {box} onto {img}", "box off {box} in {img}",
    ],
    "transcribe_audio": [
        "transcribe {aud}", "what is said in {aud}?", "convert {aud} to text", "write down what {aud} says",
        "give me a transcript of {aud}", "what does the speaker say in {aud}?", "run speech recognition on {aud}",
        "turn {aud} into words", "listen to {aud} and tell me what is said", "type out the speech in {aud}",
        "what are the words in {aud}?", "caption {aud} as text", "get the text of {aud}", "decode the speech in {aud}",
        "tell me what I said in {aud}", "make a transcript from {aud}",
    ],
    "remember": [
        "remember that {text}", "save this note: {text}", "keep in mind that {text}", "store this for later: {text}",
        "make a note that {text}", "don't forget that {text}", "add to your memory: {text}", "write this down: {text}",
        "note for later — {text}", "please memorize: {text}", "jot down that {text}", "log this: {text}",
        "put this in memory: {text}", "remember this fact: {text}", "record that {text}", "file away that {text}",
    ],
    "search_memory": [
        "what did I tell you about {query}?", "search your memory for {query}", "do you remember anything about {query}?",
        "look up {query} in your notes", "find what I saved about {query}", "what do you have stored on {query}?",
        "recall my note about {query}", "check your memory for {query}", "what was that thing about {query}?",
        "retrieve anything related to {query}", "search my saved notes for {query}", "did I mention {query} before?",
        "pull up what you know about {query} from memory", "find my earlier note on {query}",
        "what did I ask you to remember about {query}?", "dig up the memory about {query}",
    ],
    "search_memory+k": [
        "search your memory for {query}, top {n}", "find {n} notes about {query}", "give me the {n} best memories about {query}",
        "look up {query} and return {n} results", "retrieve {n} things related to {query}", "show {n} saved items about {query}",
        "search memory for {query} with k={n}", "list {n} memories matching {query}",
    ],
}

# Training-only phrasings, added for stage 4 of the shipped default: more ways to ask for each intent,
# never held out. The held-out ids index `PHRASINGS` alone, so these leave the test splits (and the
# shipped suites) exactly as they were; a test checks that none repeats a `PHRASINGS` entry.
EXTRA_PHRASINGS: dict[str, list[str]] = {
    "read_text": ["what text is on {img}?", "read me the words in {img}", "can you make out the writing in {img}?",
                  "recognize the characters in {img}", "what do the letters in {img} spell?", "say what is printed in {img}"],
    "detect_faces": ["find any faces in {img}", "point out the faces in {img}", "tell me where the faces are in {img}",
                     "how many people's faces can you see in {img}?", "detect every face on {img}", "box the faces in {img}"],
    "detect_objects": ["what items can you find in {img}, and where?", "box every object in {img}", "detect and list the objects on {img}",
                       "show me where the things in {img} are", "locate all the shapes in {img}", "find everything in {img} with boxes"],
    "detect_objects+labels": ["find every {labels} in {img}", "show me where the {labels} are in {img}", "detect only the {labels} in {img}"],
    "classify_image": ["what is pictured in {img}?", "what is the subject of {img}?", "which category fits {img}?",
                       "tell me what sort of thing {img} shows", "predict the class of {img}", "what is {img} a picture of?"],
    "classify_image+k": ["give {n} labels for {img}", "top {n} classes for {img}", "list {n} guesses for what {img} is"],
    "generate_image": ["produce a picture of {prompt}", "make an image: {prompt}", "generate art showing {prompt}",
                       "can I get a picture of {prompt}?", "depict {prompt}", "draw me {prompt}"],
    "generate_image+seed": ["generate {prompt} using random seed {n}", "draw {prompt} with the seed set to {n}",
                            "seed {n}: make a picture of {prompt}", "create an image of {prompt}, use seed {n}"],
    "generate_image+steps": ["generate {prompt} using {n} steps", "draw {prompt} with {n} sampling steps",
                             "make {prompt} in {n} denoising steps", "create a picture of {prompt} with {n} steps"],
    "crop_image": ["crop out {box} from {img}", "cut {box} out of {img}", "make a crop of {img} at {box}",
                   "return just the {box} part of {img}", "crop to the region {box} in {img}"],
    "resize_image": ["resize {img} to be {w} by {h}", "scale {img} down to {w} by {h}", "give {img} the size {w}x{h}",
                     "output {img} at {w} by {h} pixels"],
    "draw_boxes": ["draw a box at {box} on {img}", "mark {box} on {img} with a rectangle", "put a rectangle around {box} in {img}",
                   "outline the region {box} of {img}"],
    "transcribe_audio": ["what does {aud} say?", "transcribe the speech in {aud}", "write out the words spoken in {aud}",
                         "listen to {aud} and write it down", "give me the text of what is said in {aud}"],
    "remember": ["remember this: {text}", "note that {text}", "save to memory that {text}", "keep a note: {text}", "memorize that {text}"],
    "search_memory": ["search my notes for {query}", "look in your memory for {query}", "any notes about {query}?",
                      "remind me what I saved about {query}", "what's in your memory about {query}?"],
    "search_memory+k": ["find the top {n} notes on {query}", "return {n} memories about {query}"],
}

# Things a user asks that need no tool: (question, answer). Several phrasings per fact so that
# held-out ids exist here too.
# Second steps of a composed chain: they refer to the first step's output ("it", "the result",
# "them"), so the call can only be written after that result is back. `data.composed_chain` joins
# a seen phrasing of the first tool with one of these; any tool pair that is held out of training
# (`data.HELDOUT_PAIRS`) is never composed, so the unseen-combinations test stays unseen.
FOLLOW_UPS: dict[str, list[str]] = {
    "read_text": ["read the text in it", "tell me what it says", "OCR the result", "read what is written on it", "give me the words on it"],
    "classify_image": ["classify it", "tell me what it shows", "label the result", "say what the classifier thinks it is", "identify what it is"],
    "detect_faces": ["find the faces in it", "count the faces in it", "check it for faces", "look for faces in the result", "detect any faces there"],
    "detect_objects": ["detect the objects in it", "find the objects in the result", "run object detection on it", "list the things in it"],
    "resize_image": ["resize it to {w}x{h}", "scale the result to {w} by {h}", "make it {w}x{h}", "shrink it to {w}x{h}", "give it to me at {w}x{h}"],
    "crop_image+box": ["crop it to {box}", "cut {box} out of the result", "keep only {box} of it", "crop the result to {box}"],
    "crop_image": ["crop the first one", "cut out the first one", "give me a crop of the first", "crop out the first match"],
    "draw_boxes": ["draw boxes around them", "mark them with rectangles", "outline them on the image", "draw their boxes on it"],
    "remember": ["remember it", "save that to memory", "store it for later", "make a note of it", "keep that in memory",
                 "save it to memory", "note down what it says", "put it in my notes", "memorize the result"],
    "generate_image": ["draw what it says", "generate an image of that", "make a picture of it", "turn that into a picture",
                       "generate a picture from it", "draw that for me", "make an image of what it says"],
    "search_memory": ["search my notes for it", "look that up in my saved notes", "check my memory for anything about it", "find notes about that"],
}
CHAIN_JOIN = ["{x} and {y}", "{x}, then {y}", "{x} and then {y}", "first {x}, then {y}", "{x}; after that, {y}", "{x}. Then {y}"]


NO_TOOL: list[tuple[str, str]] = [
    ("What is the capital of France?", "The capital of France is Paris."),
    ("Which city is the capital of France?", "Paris is the capital of France."),
    ("How many days are in a week?", "A week has 7 days."),
    ("How many days does a week have?", "There are 7 days in a week."),
    ("What is 2 plus 2?", "2 plus 2 is 4."),
    ("What's 12 times 3?", "12 times 3 is 36."),
    ("Hello!", "Hello! How can I help you today?"),
    ("Hi there", "Hi! What can I do for you?"),
    ("Thanks, that was helpful.", "You're welcome!"),
    ("Thank you so much!", "Glad I could help!"),
    ("What color do you get by mixing blue and yellow?", "Mixing blue and yellow gives green."),
    ("What is the boiling point of water at sea level?", "Water boils at 100 degrees Celsius at sea level."),
    ("At what temperature does water boil?", "At sea level water boils at 100 °C (212 °F)."),
    ("Who wrote Romeo and Juliet?", "Romeo and Juliet was written by William Shakespeare."),
    ("What tools can you use?", "I can read text in images, detect faces and objects, classify and generate images, crop, resize and draw boxes on images, transcribe audio, and remember or search notes."),
    ("What can you do?", "I can read text, find faces and objects, classify, generate, crop and resize images, transcribe audio, and remember things for you."),
    ("How many legs does a spider have?", "A spider has 8 legs."),
    ("What is the largest planet in the solar system?", "Jupiter is the largest planet in the solar system."),
    ("Translate 'hello' into Spanish.", "'Hello' in Spanish is 'hola'."),
    ("What does CPU stand for?", "CPU stands for central processing unit."),
    ("Spell the word 'cat' backwards.", "'cat' backwards is 'tac'."),
    ("Is a tomato a fruit?", "Yes, botanically a tomato is a fruit."),
    ("How many minutes are in an hour?", "An hour has 60 minutes."),
    ("What is the square root of 81?", "The square root of 81 is 9."),
    ("Give me a synonym for happy.", "A synonym for happy is joyful."),
    ("What's the opposite of cold?", "The opposite of cold is hot."),
    ("Good morning!", "Good morning! What can I help you with?"),
    ("Who are you?", "I am mmagent, an assistant that can look at images, listen to audio and use tools."),
    ("What is the freezing point of water?", "Water freezes at 0 degrees Celsius."),
    ("How many sides does a triangle have?", "A triangle has 3 sides."),
    ("What year comes after 1999?", "The year after 1999 is 2000."),
    ("Name a primary color.", "Red is a primary color."),
    ("Tell me a fun fact about octopuses.", "Octopuses have three hearts."),
    ("What is H2O?", "H2O is water: two hydrogen atoms and one oxygen atom."),
    ("How do you say thank you in French?", "'Thank you' in French is 'merci'."),
    ("What is 100 divided by 4?", "100 divided by 4 is 25."),
]

# Requests that no tool can serve: (request, what is missing). The answer declines and calls nothing.
UNSERVABLE: list[tuple[str, str]] = [
    ("Book me a flight to Paris tomorrow.", "book flights"),
    ("Reserve a table for two at 8pm.", "make reservations"),
    ("Send an email to my boss saying I'm late.", "send email"),
    ("Text my mom that I'll call her later.", "send messages"),
    ("What's the weather in Berlin right now?", "look up live weather"),
    ("Will it rain tomorrow?", "check weather forecasts"),
    ("Play some jazz music.", "play music"),
    ("Turn off the lights in the living room.", "control smart-home devices"),
    ("Order a pizza for me.", "order food"),
    ("What's the current price of Bitcoin?", "look up live prices"),
    ("Browse to example.com and summarize the page.", "browse the web"),
    ("Call a taxi to my address.", "call taxis"),
    ("Set an alarm for 6 am.", "set alarms"),
    ("Transfer 50 dollars to Alex.", "make payments"),
    ("Check my calendar for tomorrow.", "read your calendar"),
    ("Print this document on my printer.", "print documents"),
    ("Download the latest news headlines.", "fetch news"),
    ("Make a video of a dancing cat.", "make videos"),
    ("Post this photo to Instagram.", "post to social media"),
    ("Translate this audio into Japanese speech.", "produce translated speech"),
    ("What's the traffic like on the highway now?", "check live traffic"),
    ("Run this Python script on my server.", "run code on your server"),
    ("Delete all files in my downloads folder.", "touch your files"),
    ("Track my package from the post office.", "track packages"),
    ("Buy two tickets for the concert on Friday.", "buy tickets"),
    ("Share my location with Sam.", "share locations"),
    ("Find me the cheapest hotel in Rome online.", "search hotels online"),
    ("Edit the video I recorded yesterday.", "edit videos"),
]

# Training-only requests no tool can serve (stage 4; the held-out ids index `UNSERVABLE` alone).
EXTRA_UNSERVABLE: list[tuple[str, str]] = [
    ("Open wikipedia.org and read me the front page.", "browse the web"),
    ("Look this up on Google for me.", "search the web"),
    ("Visit my company's website and check whether it is up.", "visit websites"),
    ("Stream tonight's football game.", "stream video"),
    ("Call my dentist and move my appointment.", "make phone calls"),
    ("Order new printer ink online.", "shop online"),
    ("Pay my electricity bill.", "make payments"),
    ("What's the score of the game right now?", "look up live scores"),
    ("Fetch the latest posts from NASA's account.", "read social media"),
    ("Log into my bank account and check the balance.", "access your accounts"),
    ("Update the apps on my phone.", "manage your devices"),
    ("Open the PDF on my desktop.", "open your files"),
    ("Go to the news site and summarize today's top story.", "browse the web"),
    ("Download this video from the link.", "download from the internet"),
]

# Fillers for slots.
GEN_PROMPTS = [
    "a red car on a beach", "a cat wearing a hat", "the digit 7", "a handwritten number 3", "a mountain at sunset",
    "a bowl of fruit", "an astronaut riding a horse", "a blue house with a garden", "the number 5", "a lighthouse in a storm",
    "a cup of coffee on a table", "a dog playing in snow", "a city skyline at night", "a forest in autumn", "the digit zero",
    "a robot reading a book", "a sailboat on a calm lake", "a green apple", "a field of sunflowers", "a handwritten 9",
    "an owl on a branch", "a bicycle leaning on a wall", "a snowy village", "a yellow submarine", "the digit 2",
    "a castle on a hill", "a plate of pancakes", "a panda eating bamboo", "a rocket launching", "a rainbow over hills",
]
NOTES = [
    "my locker code is 4412", "the meeting moved to Thursday at 3pm", "Anna's birthday is on May 12",
    "the wifi password is bluefish77", "I parked on level 3, spot B14", "my dentist is Dr. Patel",
    "the spare key is under the blue pot", "we need to buy milk and eggs", "the project deadline is June 30",
    "my passport number ends in 5521", "Tom prefers tea over coffee", "the garage door code is 9031",
    "my flight lands at 7:45 pm", "the plants need water every Monday", "Lisa's phone number is 555-0134",
    "the report is in the shared drive under Q3", "I owe Mark 20 dollars", "the recipe needs 200 g of flour",
    "my gym class is at 6 am on Tuesdays", "the cat's vet appointment is on Friday",
]
QUERIES = [
    "my locker code", "the meeting time", "Anna's birthday", "the wifi password", "where I parked", "my dentist",
    "the spare key", "the shopping list", "the project deadline", "my passport", "what Tom likes to drink",
    "the garage code", "my flight", "watering the plants", "Lisa's phone number", "the Q3 report", "money I owe",
    "the flour recipe", "my gym schedule", "the vet appointment",
]
OBJECT_LABELS = ["circles", "squares", "triangles", "faces", "cats", "cars", "signs", "cups", "people", "digits"]


def slip(rng, text: str, spots: list) -> str:
    """A slip of the keyboard (a dropped, swapped or doubled letter) in one of `spots` (regex matches
    of words in `text`, 3+ letters), or `text` unchanged when there is none. The typo makers of
    `natural.py` and `open_world.py` pick the words; this is the one place that misspells them."""
    if not spots:
        return text
    m = rng.choice(spots)
    w, j = m.group(), rng.randrange(1, len(m.group()) - 1)
    w2 = rng.choice([w[:j] + w[j + 1:], w[:j] + w[j + 1] + w[j] + w[j + 2:], w[:j] + w[j] + w[j:]])
    return text[: m.start()] + w2 + text[m.end():]
