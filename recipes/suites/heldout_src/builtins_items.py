"""Requests for the 11 built-in tools (heldout-natural-builtins.jsonl).

Each item: kind, prompt, images (media names, attachment order = image_1, image_2, ...), optional audio
(audio_1, ...), calls: [(tool, {arg: allowed values})]. A list is the list of allowed values; an array
argument's allowed values are written [[...], [...]]. Arguments not given are filled with [""].
"""

from __future__ import annotations

from itertools import permutations


def perms(*xs):
    return [list(p) for p in permutations(xs)]


def box(x0, y0, x1, y1):
    return {"x0": x0, "y0": y0, "x1": x1, "y1": y1}


IMG = {"image": "image_1"}


def S(prompt, images, *calls, audio=None):
    return {"kind": "single", "prompt": prompt, "images": images, "audio": audio or [], "calls": list(calls)}


def N(prompt, images=(), audio=None):
    return {"kind": "no_tool", "prompt": prompt, "images": list(images), "audio": audio or [], "calls": []}


def U(prompt, images=(), audio=None):
    return {"kind": "unservable", "prompt": prompt, "images": list(images), "audio": audio or [], "calls": []}


def items(image_size):
    cw, ch = image_size("china")
    rw, rh = image_size("receipt_grocery")
    out = [
        # ---------------------------------------------------------------- read_text (14)
        S("Am I allowed to leave my car here on a Tuesday afternoon? I took a photo of the sign on the lamp post.",
          ["no_parking"], ("read_text", IMG)),
        S("whats the wifi password here?? took a pic of the sign but its blurry on my phone", ["wifi_sign"],
          ("read_text", IMG)),
        S("How much did I end up spending at the market? Receipt attached.", ["receipt_grocery"], ("read_text", IMG)),
        S("When does this invoice need to be paid by? I want to put a reminder in my calendar.", ["invoice"],
          ("read_text", IMG)),
        S("My dad is asking how often he's allowed to take these pills. Could you check the label for him? Thank you!",
          ["medicine_label"], ("read_text", IMG)),
        S("I'm at the station and can't see the board properly from here. Which platform does the Bristol train go from?",
          ["departures"], ("read_text", IMG)),
        S("Could you type out the printed text in this scanned page for me?", ["page"], ("read_text", IMG)),
        S("I need to email the woman who gave me this card, but I can't make out the address in the photo. What is it?",
          ["business_card"], ("read_text", IMG)),
        S("Will they be open on Sunday? This is what's on their door.", ["hours_sign"], ("read_text", IMG)),
        S("Standing outside this shop right now... any idea when they'll be back?", ["closed_sign"], ("read_text", IMG)),
        S("what's the soup today and how much", ["menu_board"], ("read_text", IMG)),
        S("Two pictures here: my concert ticket and a receipt. Looking at the second one, what did the cafe charge me in total?",
          ["ticket", "receipt_cafe"], ("read_text", {"image": "image_2"})),
        S("Please read the to-do list off this whiteboard. Only keep lines you're reasonably sure about, say a confidence of 0.8 or more.",
          ["whiteboard"], ("read_text", {"image": "image_1", "min_confidence": 0.8})),
        S("What is the speed limit on this road? I'd rather not get a ticket.", ["speed_limit"], ("read_text", IMG)),
        S("We were thinking of going for a dip here. Is that allowed? There's a sign by the water.", ["no_swimming"],
          ("read_text", IMG)),

        # ---------------------------------------------------------------- detect_faces (7)
        S("Is there anybody's face in this photo? If there is, where exactly is it?", ["astronaut"], ("detect_faces", IMG)),
        S("Find the face in this picture and give me its bounding box.", ["cameraman"], ("detect_faces", IMG)),
        S("How many faces can you spot in this image?", ["two_faces"], ("detect_faces", IMG)),
        S("I'm going to blur people's faces before I post this online. Can you first locate any faces for me?",
          ["astronaut"], ("detect_faces", IMG)),
        S("Run face detection on this one, but skip anything smaller than 60 pixels.", ["cameraman"],
          ("detect_faces", {"image": "image_1", "min_size": 60})),
        S("look for faces in this pic and be strict about it, min_neighbors = 10 please", ["two_faces"],
          ("detect_faces", {"image": "image_1", "min_neighbors": 10})),
        S("For a privacy check I need to know: are there any human faces visible in this landscape photo?", ["china"],
          ("detect_faces", IMG)),

        # ---------------------------------------------------------------- classify_image (8)
        S("What animal is this?", ["cat"], ("classify_image", IMG)),
        S("what is this thing? my kid insists it's a bowl of soup lol", ["coffee"], ("classify_image", IMG)),
        S("Could you tell me what kind of flower this might be?", ["flower"], ("classify_image", IMG)),
        S("What does this image show? Give me your top 3 guesses.", ["rocket"], ("classify_image", {"image": "image_1", "top_k": 3})),
        S("My neighbour sent me this picture. Is that a cat or a small dog? I honestly can't tell from the thumbnail.",
          ["cat"], ("classify_image", IMG)),
        S("Which category would an image classifier put this photo in? Show me ten labels.", ["china"],
          ("classify_image", {"image": "image_1", "top_k": 10})),
        S("Classify this image, I only need the single most likely label.", ["cameraman"],
          ("classify_image", {"image": "image_1", "top_k": 1})),

        # ---------------------------------------------------------------- detect_objects (10)
        S("Where's the cup in this photo? I need its coordinates.", ["coffee"],
          ("detect_objects", {"image": "image_1", "labels": [["cup"], ["coffee cup"], ["mug"]]})),
        S("count the red circles in this image", ["shapes"],
          ("detect_objects", {"image": "image_1", "labels": [["circle"], ["red circle"], ["circles"], ["red circles"]]})),
        S("Please locate the cat and put a box around where it is.", ["cat"],
          ("detect_objects", {"image": "image_1", "labels": [["cat"]]})),
        S("Can you find the flag in this picture? Where is it?", ["astronaut"],
          ("detect_objects", {"image": "image_1", "labels": [["flag"], ["american flag"], ["us flag"]]})),
        S("Find the rocket and tell me where it sits in the frame.", ["rocket"],
          ("detect_objects", {"image": "image_1", "labels": [["rocket"]]})),
        S("Detect both the cat and the coffee cup in this picture, please.", ["cat_and_coffee"],
          ("detect_objects", {"image": "image_1", "labels": perms("cat", "cup") + perms("cat", "coffee cup") + perms("cat", "mug")})),
        S("How many flowers are in this shot? Count only detections with a score above 0.3.", ["flower"],
          ("detect_objects", {"image": "image_1", "labels": [["flower"], ["flowers"]], "threshold": 0.3})),
        S("Are there any buildings in this photo? Find them for me.", ["china"],
          ("detect_objects", {"image": "image_1", "labels": [["building"], ["buildings"]]})),
        S("How many cars are parked in this lot?", ["parking_lot"],
          ("detect_objects", {"image": "image_1", "labels": [["car"], ["cars"]]})),
        S("find at most 3 spoons in this pic", ["coffee"],
          ("detect_objects", {"image": "image_1", "labels": [["spoon"], ["spoons"]], "max_objects": 3})),

        # ---------------------------------------------------------------- crop_image (6)
        S("Crop this to the box from (100, 50) to (400, 300).", ["astronaut"],
          ("crop_image", {"image": "image_1", "box": [box(100, 50, 400, 300)]})),
        S("Please cut out the region x from 120 to 330 and y from 40 to 260.", ["cat"],
          ("crop_image", {"image": "image_1", "box": [box(120, 40, 330, 260)]})),
        S("I only want the top-left 300 by 200 pixels of this photo (300 wide, 200 tall).", ["coffee"],
          ("crop_image", {"image": "image_1", "box": [box(0, 0, 300, 200)]})),
        S(f"This picture is {cw}x{ch}. Keep just the left half, full height.", ["china"],
          ("crop_image", {"image": "image_1", "box": [box(0, 0, cw // 2, ch)]})),
        S("crop x0=200 y0=0 x1=450 y1=427", ["rocket"], ("crop_image", {"image": "image_1", "box": [box(200, 0, 450, 427)]})),
        S(f"Could you crop the bottom of the receipt for me? From y = 420 down to {rh}, across the whole {rw} px width.",
          ["receipt_grocery"], ("crop_image", {"image": "image_1", "box": [box(0, 420, rw, rh)]})),

        # ---------------------------------------------------------------- resize_image (6)
        S("Resize this to 256 pixels wide.", ["astronaut"], ("resize_image", {"image": "image_1", "width": 256})),
        S("make it 200px tall, keep the proportions", ["cat"],
          ("resize_image", {"image": "image_1", "height": 200, "keep_aspect": ["", True]})),
        S("Resize this to exactly 300 x 300. I don't mind if it gets stretched.", ["coffee"],
          ("resize_image", {"image": "image_1", "width": 300, "height": 300, "keep_aspect": [False]})),
        S("Shrink this photo into a 128 by 96 thumbnail, please.", ["flower"],
          ("resize_image", {"image": "image_1", "width": 128, "height": 96, "keep_aspect": ["", True]})),
        S("Could you upscale this one to 1280 pixels in width?", ["rocket"], ("resize_image", {"image": "image_1", "width": 1280})),
        S("scale the scan to a height of four hundred pixels", ["page"], ("resize_image", {"image": "image_1", "height": 400})),

        # ---------------------------------------------------------------- generate_image (7)
        S("Draw me a picture of a red fox sleeping in the snow.", [],
          ("generate_image", {"prompt": ["a red fox sleeping in the snow", "red fox sleeping in the snow",
                                         "a red fox sleeping in snow", "red fox sleeping in snow"]})),
        S("Can you make an image of a lighthouse at sunset? 512 wide and 768 tall.", [],
          ("generate_image", {"prompt": ["a lighthouse at sunset", "lighthouse at sunset"], "width": 512, "height": 768})),
        S("Generate a watercolor painting of a small cottage by a lake. Use seed 42 so I can get the same one again.", [],
          ("generate_image", {"prompt": ["a watercolor painting of a small cottage by a lake",
                                         "watercolor painting of a small cottage by a lake",
                                         "a watercolor of a small cottage by a lake", "watercolor small cottage by a lake"],
                              "seed": 42})),
        S("I need an illustration for my blog: a robot watering plants in a greenhouse. Go for 50 steps, quality matters.", [],
          ("generate_image", {"prompt": ["a robot watering plants in a greenhouse", "robot watering plants in a greenhouse",
                                         "an illustration of a robot watering plants in a greenhouse"], "steps": 50})),
        S("make a pic of a bowl of ramen seen from above", [],
          ("generate_image", {"prompt": ["a bowl of ramen seen from above", "bowl of ramen seen from above",
                                         "a bowl of ramen, top view", "a bowl of ramen from above", "bowl of ramen from above"]})),
        S("Please create an image of a giraffe wearing sunglasses on a beach.", [],
          ("generate_image", {"prompt": ["a giraffe wearing sunglasses on a beach", "giraffe wearing sunglasses on a beach",
                                         "a giraffe wearing sunglasses on the beach"]})),
        S("Generate a cozy reading nook with a cat asleep on the armchair. Set the guidance scale to 7.5.", [],
          ("generate_image", {"prompt": ["a cozy reading nook with a cat asleep on the armchair",
                                         "cozy reading nook with a cat asleep on the armchair",
                                         "a cozy reading nook with a cat asleep on an armchair",
                                         "a cozy reading nook with a cat sleeping on the armchair"], "guidance_scale": 7.5})),

        # ---------------------------------------------------------------- transcribe_audio (4)
        S("Can you write out what I said in this voice memo?", [], ("transcribe_audio", {"audio": "audio_1"}), audio=["voice_memo"]),
        S("My boss left me a voicemail and I'm stuck in a meeting, can't listen. What does it say?", [],
          ("transcribe_audio", {"audio": "audio_1"}), audio=["voicemail"]),
        S("here's a short clip from the lecture - type out what the professor says pls", [],
          ("transcribe_audio", {"audio": "audio_1"}), audio=["lecture_clip"]),
        S("Transcribe this recording, please.", [], ("transcribe_audio", {"audio": "audio_1"}), audio=["meeting_clip"]),

        # ---------------------------------------------------------------- remember (4)
        S("Please remember that my gym locker code is 4417.", [],
          ("remember", {"text": ["my gym locker code is 4417", "gym locker code is 4417", "my gym locker code: 4417",
                                 "gym locker code: 4417", "the gym locker code is 4417", "gym locker code 4417",
                                 "user's gym locker code is 4417"]})),
        S("Note for later: my dentist appointment is on May 12 at 3pm.", [],
          ("remember", {"text": ["my dentist appointment is on May 12 at 3pm", "dentist appointment is on May 12 at 3pm",
                                 "dentist appointment on May 12 at 3pm", "dentist appointment: May 12 at 3pm",
                                 "dentist appointment May 12 at 3pm", "dentist appointment on May 12 at 3 pm"]})),
        S("Save this photo of the corner where I parked, and tag it 'parking'.", ["street_corner"],
          ("remember", {"image": "image_1", "tags": [["parking"]],
                        "text": ["", "where I parked", "the corner where I parked", "corner where I parked",
                                 "photo of the corner where I parked", "parking spot"]})),
        S("Keep in mind that my wife is allergic to peanuts, it matters when you suggest recipes.", [],
          ("remember", {"text": ["my wife is allergic to peanuts", "wife is allergic to peanuts", "my wife has a peanut allergy",
                                 "wife allergic to peanuts", "user's wife is allergic to peanuts"]})),

        # ---------------------------------------------------------------- search_memory (4)
        S("What was my locker code again? I told you a few days ago.", [],
          ("search_memory", {"query": ["locker code", "my locker code", "gym locker code", "my gym locker code", "locker code number"]})),
        S("Did I ever tell you when my sister's birthday is?", [],
          ("search_memory", {"query": ["sister's birthday", "my sister's birthday", "sister birthday", "birthday of my sister",
                                       "when is my sister's birthday"]})),
        S("Pull up the pictures I saved with the tag 'receipts'.", [],
          ("search_memory", {"tags": [["receipts"]], "modality": ["", "image"], "query": ["", "receipts", "receipt"]})),
        S("Have I saved anything that looks like this photo before?", ["cat"], ("search_memory", {"image": "image_1"})),

        # ---------------------------------------------------------------- draw_boxes (2)
        S("Draw a box from (120, 40) to (330, 260) on this picture and label it 'cat'.", ["cat"],
          ("draw_boxes", {"image": "image_1", "boxes": [[{**box(120, 40, 330, 260), "label": "cat"}]]})),
        S("Mark the area 150,80 to 450,360 with a green rectangle, line width 5.", ["coffee"],
          ("draw_boxes", {"image": "image_1", "boxes": [[box(150, 80, 450, 360)], [{**box(150, 80, 450, 360), "label": ""}]],
                          "color": "green", "line_width": 5})),

        # ---------------------------------------------------------------- no tool (30)
        N("hi there!"),
        N("thanks, that's exactly what I needed"),
        N("Haha thanks, nice photo isn't it? I took it at the space museum last summer.", ["astronaut"]),
        N("This is my cat, Chelsea. Just wanted to show her off :)", ["cat"]),
        N("What's the capital of Japan?"),
        N("How many days are there in a leap year?"),
        N("Good night, talk to you tomorrow."),
        N("Can you explain what OCR means, in simple words?"),
        N("What kinds of things can you help me with?"),
        N("Could you suggest a few names for my new puppy? She's a golden retriever."),
        N("what's 15% of 80"),
        N("Write a two-line poem about coffee."),
        N("I'm going to print this one and frame it for my mom. Thanks for all the help earlier!", ["flower"]),
        N("Is it 'affect' or 'effect' in this sentence: 'The rain will ___ our plans'?"),
        N("ok bye"),
        N("How do you say 'thank you' in Spanish?"),
        N("You've been super helpful today, really appreciate it."),
        N("What's the difference between cropping a picture and resizing it?"),
        N("hello, how are you doing today?"),
        N("never mind, I figured out the total myself. thanks anyway!", ["receipt_grocery"]),
        N("In one sentence, what is a bounding box?"),
        N("Why is the sky blue?"),
        N("Give me three tips for sleeping better."),
        N("What does JPEG stand for?"),
        N("Roughly how many miles is 5 kilometers?"),
        N("Mmm, this was my breakfast this morning. So good!", ["coffee"]),
        N("good morning!!"),
        N("Tell me a short joke about computers."),
        N("I nearly slipped right after taking this, haha. Anyway, thanks for your help today!", ["wet_floor"]),
        N("Sorry, wrong chat, please ignore that last message."),

        # ---------------------------------------------------------------- unservable (18)
        U("Book me a flight from Chicago to Denver for next Friday."),
        U("Turn on the living room lights."),
        U("Send an email to my landlord saying the rent will be a few days late."),
        U("Set an alarm for 6:30 tomorrow morning."),
        U("Play some jazz music."),
        U("Order a large pepperoni pizza to my place, please."),
        U("What's the weather like in Seattle right now?"),
        U("Rotate this photo 90 degrees clockwise.", ["astronaut"]),
        U("Can you convert this picture to black and white?", ["flower"]),
        U("Remove the background from this picture of my cat, I want just the cat.", ["cat"]),
        U("Call my mom."),
        U("Forward this memo to everyone on my team, please.", ["memo"]),
        U("What's the price of Bitcoin at this moment?"),
        U("Make this audio clip louder, it's too quiet.", audio=["radio_clip"]),
        U("Text Sarah that I'll be 10 minutes late."),
        U("Pay this bill with my credit card.", ["invoice"]),
        U("Navigate me to the nearest gas station."),
        U("This photo is way too dark, can you brighten it up?", ["coffee"]),
    ]
    return out
