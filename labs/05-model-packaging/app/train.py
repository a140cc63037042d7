"""Train a small iris classifier and save it as a model bundle (joblib) with its version.

The image does NOT run this script: a model is a release artefact of its own, produced here, stored
next to the code (or in a model registry) and mounted into the container at run time.

Usage: python train.py --version 1.0.0 --out models/v1.joblib
       python train.py --version 2.0.0 --out models/v2.joblib --swap setosa virginica
--swap trains on data whose two classes are exchanged: a deliberately different model, so that you
can see (and the grader can check) which of the two a running container really uses.
"""

import argparse

import joblib
import sklearn
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

SEED = 42  # fixed, so that every run trains exactly the same model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", required=True, help="the model's version, reported by /health")
    parser.add_argument("--out", required=True, help="where to write the bundle")
    parser.add_argument("--swap", nargs=2, metavar="CLASS", help="exchange the labels of two classes")
    args = parser.parse_args()

    iris = load_iris()
    classes = [str(name) for name in iris.target_names]
    target = iris.target.copy()
    if args.swap:
        a, b = (classes.index(name) for name in args.swap)
        target[iris.target == a], target[iris.target == b] = b, a
    x_train, x_test, y_train, y_test = train_test_split(
        iris.data, target, test_size=0.2, random_state=SEED, stratify=target
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=SEED))
    model.fit(x_train, y_train)
    accuracy = model.score(x_test, y_test)

    # The bundle carries what the service needs besides the model: class names and the version.
    bundle = {
        "model": model,
        "version": args.version,
        "classes": classes,
        "features": [str(name) for name in iris.feature_names],
        "sklearn_version": sklearn.__version__,
        "test_accuracy": round(float(accuracy), 4),
    }
    joblib.dump(bundle, args.out)
    print(f"saved {args.out}: version {args.version} (test accuracy {accuracy:.3f})")


if __name__ == "__main__":
    main()
